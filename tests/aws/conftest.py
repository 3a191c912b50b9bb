"""The moto AWS emulator (moto server on 127.0.0.1) for the AWS target's tests - an emulator, never AWS.

The fixture starts the moto server with the extensions of emulator.py (EFS tag API, RDS parameter groups) on a
free port, points every AWS client at it through the environment
(AWS_URL for the amazon.aws/community.aws modules, lookups and the aws_ec2 inventory; AWS_ENDPOINT_URL for
boto3) with dummy credentials, and stops it afterwards. Test setup that is not the roles' job - a Debian
AMI stand-in and an ACM certificate - is made here with boto3.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REGION = "eu-west-1"


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    import boto3

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    # Managed policies (AmazonSSMManagedInstanceCore) exist only when moto loads them.
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("emulator.py")), str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env=dict(os.environ, MOTO_IAM_LOAD_MANAGED_POLICIES="true"))
    creds = {"aws_access_key_id": "emulator", "aws_secret_access_key": "emulator"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_URL=endpoint, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="emulator",
               AWS_SECRET_ACCESS_KEY="emulator", AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,  # noqa: S106
               ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="false",
               PATH=f"{VENV_BIN}:{os.environ['PATH']}")

    def client(service):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **creds)

    for _ in range(100):
        try:
            client("sts").get_caller_identity()
            break
        except Exception:
            time.sleep(0.1)
    account = client("sts").get_caller_identity()["Account"]
    # Stand-in for Debian's AMI (owned by the emulator's account, named like Debian's).
    client("ec2").register_image(Name="debian-12-amd64-20260101-emulator", RootDeviceName="/dev/xvda",
                                 BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 8}}])
    certificate = client("acm").request_certificate(DomainName="moodle.example.org")["CertificateArn"]
    yield {"endpoint": endpoint, "env": env, "client": client, "account": account, "certificate": certificate,
           "log": log}
    proc.terminate()
    proc.wait(timeout=10)


def run_playbook(emulator, tmp_path, playbook, extra=None, check=False, timeout=900, inventories=(), env=None):
    """ansible-playbook moodle.platform.<playbook> (or a playbook file) on the controller, plus `inventories`;
    returns (rc, output, changed task names, seconds)."""
    import json

    inventory = tmp_path / "controller.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
                         f"      ansible_python_interpreter: {sys.executable}\n")
    args = [str(VENV_BIN / "ansible-playbook"), str(playbook) if str(playbook).endswith(".yml")
            else f"moodle.platform.{playbook}", "-i", str(inventory), "-e", json.dumps(extra or {})]
    for source in inventories:
        args += ["-i", str(source)]
    if check:
        args.append("--check")
    start = time.monotonic()
    proc = subprocess.run(args, env={**emulator["env"], **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=tmp_path)
    out = proc.stdout + proc.stderr
    changed, task = [], None
    for line in out.splitlines():
        match = re.match(r"TASK \[(.*)\] \*+", line)
        if match:
            task = match.group(1)
        elif line.startswith("changed:") and task and task not in changed:
            changed.append(task)
    return proc.returncode, out, changed, time.monotonic() - start
