"""An S3 EMULATOR for backup tests: moto's server (`moto_server` from the venv), never AWS.

What it proves: restic's S3 backend stores and reads a repository through the S3 API with the keys
it was given (request signatures are checked: INITIAL_NO_AUTH_ACTION_COUNT=3 lets only the set-up
calls below - IAM user, access key, policy - through unsigned). What it does not: AWS's consistency,
IAM policy evaluation (the policy allows s3:* and moto does not enforce it), TLS, or anything of a real
S3 service's behaviour under load.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def moto_s3(host: str = "127.0.0.1", bucket: str = "moodle-backups") -> Iterator[dict]:
    """Serve the emulator on HOST (a free port), create a signing user and BUCKET; yield
    {"endpoint", "client" (boto3 S3 client with that user's key), "key", "secret", "bucket"}."""
    import boto3

    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", host, "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        endpoint = f"http://{host}:{port}"
        iam = boto3.client("iam", endpoint_url=endpoint, aws_access_key_id="setup",
                           aws_secret_access_key="setup", region_name="us-east-1")  # noqa: S106 - unsigned set-up calls
        deadline = time.monotonic() + 60  # moto imports for seconds on a loaded machine
        while True:
            try:
                iam.create_user(UserName="moodle-backup")
                break
            except Exception:  # the server is still starting
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        key = iam.create_access_key(UserName="moodle-backup")["AccessKey"]
        iam.put_user_policy(UserName="moodle-backup", PolicyName="s3", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key["AccessKeyId"],
                              aws_secret_access_key=key["SecretAccessKey"], region_name="us-east-1")
        client.create_bucket(Bucket=bucket)
        yield {"endpoint": endpoint, "client": client, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"],
               "bucket": bucket}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
