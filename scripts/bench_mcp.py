#!/usr/bin/env python3
"""Figures of the MCP server on the running day-2 stand-in site (deploy it first, e.g. with
DAY2_KEEP_STACK=1 make mcp-test): site_status latency through MCP (stdio, SDK client) against the same
module run directly (ansible -m moodle.platform.moodle_info), and backup_now through MCP (a job, until it
ends) against the backup playbook run directly.  Takes two backups.  Prints the figures."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = ROOT / "tests" / "day2" / "inventory"
ENV = {"PYTHONPATH": str(ROOT / "mcp-server" / "src"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
VENV_BIN = Path(sys.executable).parent


def timed(argv: list[str]) -> float:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **ENV}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.monotonic() - started


async def through_mcp(state: str) -> tuple[list[float], float]:
    params = StdioServerParameters(command=sys.executable, env=ENV, args=[
        "-m", "moodle_platform_mcp", "--site", f"day2={INVENTORY}", "--allow-changes", "--state-dir", state])
    async with Client(params) as client:
        latencies = []
        for _ in range(5):
            started = time.monotonic()
            result = await client.call_tool("site_status", {"site": "day2"})
            latencies.append(time.monotonic() - started)
            assert not result.is_error, result
        started = time.monotonic()
        job = (await client.call_tool("backup_now", {"site": "day2"})).structured_content
        while job["status"] == "running":
            job = (await client.call_tool("job_status", {"job_id": job["job_id"], "wait_seconds": 20})).structured_content
        assert job["status"] == "successful", job
        return latencies, time.monotonic() - started


def main() -> int:
    with tempfile.TemporaryDirectory() as state:
        latencies, backup_mcp = asyncio.run(through_mcp(state))
    direct_info = [timed([str(VENV_BIN / "ansible"), "docker_hosts", "-i", str(INVENTORY), "-m",
                          "moodle.platform.moodle_info", "-a", "container=day2-web-1"]) for _ in range(3)]
    backup_direct = timed([str(VENV_BIN / "ansible-playbook"), "playbooks/backup.yml", "-i", str(INVENTORY)])
    print(f"site_status through MCP (stdio): median {statistics.median(latencies):.2f} s, "
          f"min {min(latencies):.2f} s over {len(latencies)} calls")
    print(f"moodle.platform.moodle_info directly (ansible ad-hoc): median {statistics.median(direct_info):.2f} s")
    print(f"backup_now through MCP (call to job end): {backup_mcp:.1f} s")
    print(f"backup playbook directly (ansible-playbook playbooks/backup.yml): {backup_direct:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
