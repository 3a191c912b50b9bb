#!/usr/bin/env python3
"""make bench-backup: time a full backup, a 1 % incremental backup and a restore to serving.

Not a test: it prints figures from one run.  It uses the day-2 test site (Compose project ``day2``
with the Moodle STAND-IN, inventory tests/day2/inventory), deploying it when it is not running, and
fills its moodledata with ~1 GB of files of mixed sizes named like Moodle's filedir (sha1 of the
content in two-level directories).  Goals from issue 4: incremental <= 10 s, restore-to-serving
<= 5 min for that site.

    BENCH_SIZE_MB=1024 python3 scripts/bench_backup.py
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "day2"))
from conftest import (  # noqa: E402
    ENGINE,
    ENGINE_CONFIG,
    ENGINE_ENV,
    WEB,
    container_running,
    deploy_stack,
    destroy_stack,
    http_status,
    playbook,
)

SIZE_MB = int(os.environ.get("BENCH_SIZE_MB", "1024"))
RNG = random.Random(4)  # noqa: S311 - reproducible benchmark data, not security


def engine(*args):
    start = time.monotonic()
    proc = subprocess.run([*ENGINE, "--config", str(ENGINE_CONFIG), *args], capture_output=True, check=False,
                          env=ENGINE_ENV)
    if proc.returncode != 0:
        raise SystemExit(f"engine {args} failed: {proc.stdout.decode()} {proc.stderr.decode()[-2000:]}")
    return json.loads(proc.stdout), time.monotonic() - start


def mountpoint():
    out = subprocess.run(["docker", "volume", "inspect", "--format", "{{.Mountpoint}}", "day2_moodledata"],
                         capture_output=True, check=True)
    return Path(out.stdout.decode().strip())


def sizes(total):
    """Mixed sizes like a course site's filedir: many small files, some medium, a few large."""
    out, used = [], 0
    while used < total:
        pick = RNG.random()
        size = (RNG.randint(2_000, 60_000) if pick < 0.80 else RNG.randint(100_000, 2_000_000) if pick < 0.98
                else RNG.randint(10_000_000, 40_000_000))
        out.append(size)
        used += size
    return out


def write_file(root, size):
    data = os.urandom(size)
    digest = hashlib.sha1(data).hexdigest()  # noqa: S324 - Moodle's filedir naming, not security
    path = root / "filedir" / digest[:2] / digest[2:4] / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chown(path, 33, 33)
    return path


def main():
    web = container_running(WEB)
    if not (web and web["running"]):
        print("deploying the day2 stand-in stack ...", flush=True)
        deploy_stack()
    playbook("backup.yml")  # configures the engine (and takes a first small backup)
    root = mountpoint()
    print(f"generating ~{SIZE_MB} MB of moodledata in {root} ...", flush=True)
    files = [write_file(root, s) for s in sizes(SIZE_MB * 1024 * 1024)]
    for directory in root.joinpath("filedir").rglob("*"):
        if directory.is_dir():
            os.chown(directory, 33, 33)
    total = sum(p.stat().st_size for p in files)
    print(f"{len(files)} files, {total / 1e6:.0f} MB", flush=True)

    manifest, full = engine("backup")
    print(f"full backup: {full:.1f} s ({manifest['moodledata']['added_bytes'] / 1e6:.0f} MB added)", flush=True)

    changed = RNG.sample(files, max(1, len(files) // 100))
    for path in changed[: len(changed) // 2]:
        path.unlink()
    for path in changed[len(changed) // 2:]:
        write_file(root, path.stat().st_size)
    manifest, incremental = engine("backup")
    print(f"incremental backup after changing {len(changed)} files (1 %): {incremental:.1f} s "
          f"({manifest['moodledata']['added_bytes'] / 1e6:.1f} MB added)", flush=True)

    destroy_stack()
    start = time.monotonic()
    playbook("restore.yml", f"restore_backup_id={manifest['backup_id']}")
    restore = time.monotonic() - start
    serving = http_status("http://127.0.0.1:8180/login/index.php")
    print(f"restore to serving (empty host: deploy stack + restore + health): {restore:.1f} s, HTTP {serving}")
    print()
    print(f"RESULT size_mb={total / 1e6:.0f} files={len(files)} full_s={full:.1f} incremental_s={incremental:.1f} "
          f"restore_to_serving_s={restore:.1f}")
    print(f"incremental/full = {incremental / full:.3f}; goal incremental <= 10 s: {'met' if incremental <= 10 else 'MISSED'}; "
          f"goal restore <= 300 s: {'met' if restore <= 300 and serving == '200' else 'MISSED'}")


if __name__ == "__main__":
    main()
