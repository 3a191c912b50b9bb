"""The MCP server (mcp-server/) against the day-2 stand-in site (Moodle STAND-IN, not Moodle), driven by
the MCP SDK's own client over stdio and over streamable HTTP.

Shares the day-2 session's deployment (the `stack` fixture): runs after test_awx_job_templates.py (which
restores the site) and test_day2_compose.py, so it assumes no backup count and no particular image - it
takes the backup it needs itself.  Every call goes through `call()`, which records the call and the
answer: the last test checks the audit log against those calls and scans every answer, the audit log
and the servers' stderr for the site's secrets and the bearer token.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import INVENTORY, PROJECT, ROOT, WEB, container_running, engine, run, sql

SECRETS_DIR = Path.home() / ".moodle-platform/day2-test"
SERVER_ENV = {"PYTHONPATH": str(ROOT / "mcp-server" / "src"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
SITE = {"site": PROJECT}
CALLS: list[str] = []       # tool of every call made (the audit log must have each)
ANSWERS: list[str] = []     # every answer (scanned for secrets)
STATE: dict = {}
FIGURES: list[str] = []     # printed with the stage time at the end of the module


@pytest.fixture(scope="module", autouse=True)
def stage_time(request):
    """This module's wall time and figures, shown even under -q (it runs inside the day2-stack stage)."""
    started = time.monotonic()
    yield
    line = f"<== [mcp (in day2-stack)] {time.monotonic() - started:.0f}s"
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print("\n" + "\n".join([*FIGURES, line]))
    if os.environ.get("TIMINGS_FILE"):
        with open(os.environ["TIMINGS_FILE"], "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("mcp")


def server_args(work: Path, *flags: str) -> list[str]:
    return ["-m", "moodle_platform_mcp", "--site", f"{PROJECT}={INVENTORY}", "--state-dir", str(work / "state"),
            "--audit-log", str(work / "audit.jsonl"), *flags]


def stdio(work: Path, *flags: str) -> Client:
    """A server process of its own over stdio (its stderr kept for the secret scan)."""
    errlog = open(work / "stdio-stderr.log", "a", encoding="utf-8")  # closed by the last test
    STATE.setdefault("errlogs", []).append(errlog)
    params = StdioServerParameters(command=sys.executable, args=server_args(work, *flags), env=SERVER_ENV)
    return Client(stdio_client(params, errlog=errlog))


@pytest.fixture(scope="module")
def http_server(work, stack):
    """The server over streamable HTTP on loopback, destructive tools enabled, bearer token from a file."""
    token = secrets.token_urlsafe(32)
    (work / "token").write_text(token + "\n")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stderr = open(work / "http-stderr.log", "w", encoding="utf-8")  # closed when the server stops
    proc = subprocess.Popen([sys.executable, *server_args(work, "--allow-destructive", "--transport", "http",
                                                          "--port", str(port), "--token-file", str(work / "token"))],
                            env={**os.environ, **SERVER_ENV}, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx2.get(url, timeout=2)
            break
        except httpx2.TransportError:
            assert proc.poll() is None and time.monotonic() < deadline, (work / "http-stderr.log").read_text()
            time.sleep(0.2)
    yield {"url": url, "token": token}
    proc.terminate()
    proc.wait(timeout=30)
    stderr.close()


@contextlib.asynccontextmanager
async def http(server):
    """A client session over streamable HTTP with the bearer token."""
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {server['token']}"}, timeout=60) as transport, \
            Client(streamable_http_client(server["url"], http_client=transport)) as client:
        yield client


async def call(client: Client, tool: str, arguments: dict, progress: list | None = None):
    async def on_progress(value, total, message):
        if progress is not None:
            progress.append((value, message))

    CALLS.append(tool)
    result = await client.call_tool(tool, arguments, read_timeout_seconds=60, progress_callback=on_progress)
    ANSWERS.append(result.model_dump_json())
    return result


def text(result) -> str:
    return " ".join(c.text for c in result.content if hasattr(c, "text"))


async def follow(client: Client, job_id: str, progress: list, limit: float = 900) -> dict:
    """job_status with waits until the job ends (each call stays well under the 30 s per-call timeout)."""
    deadline = time.monotonic() + limit
    while True:
        status = (await call(client, "job_status", {"job_id": job_id, "wait_seconds": 20}, progress)).structured_content
        if status["status"] != "running" or time.monotonic() > deadline:
            return status


# ------------------------------------------------------------------------------------------------
def test_tools_carry_annotations_and_read_only_lists_no_changing_tool(work, http_server):
    async def go():
        async with stdio(work) as client:
            read_only = (await client.list_tools()).tools
        async with http(http_server) as client:
            everything = (await client.list_tools()).tools
        return read_only, everything

    read_only, everything = asyncio.run(go())
    names = {t.name for t in everything}
    assert {"site_status", "list_backups", "show_backup", "last_restore_drill", "alerts", "logs", "plan_upgrade",
            "plan_restore", "backup_now", "restore_drill", "restore", "apply_upgrade", "job_status", "job_cancel"} <= names
    for tool in everything:
        hints = tool.annotations
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint), tool.name
    assert {t.name for t in everything if t.annotations.destructive_hint} == {"restore", "apply_upgrade"}
    assert {t.name for t in read_only} == {t.name for t in everything if t.annotations.read_only_hint}


def test_site_status_returns_the_live_values(work, stack):
    async def go():
        async with stdio(work) as client:
            first = await call(client, "site_status", SITE)
            times = []
            for _ in range(5):
                started = time.monotonic()
                await call(client, "site_status", SITE)
                times.append(time.monotonic() - started)
            logs = {service: await call(client, "logs", {**SITE, "service": service, "lines": 30})
                    for service in ("web", "db")}
            return first, times, logs

    result, times, logs = asyncio.run(go())
    for service, answer in logs.items():
        assert not answer.is_error and answer.structured_content["lines"], (service, text(answer))
    assert not result.is_error, text(result)
    status = result.structured_content
    config = dict(sql("SELECT name, value FROM mdl_config WHERE name IN ('version', 'release')"))
    assert status["installed"] is True
    assert str(status["db_version"]) == config["version"] and status["db_release"] == config["release"]
    assert status["upgrade_pending"] is False
    maintenance = sql("SELECT value FROM mdl_config WHERE name = 'maintenance_enabled'") == [["1"]] or run(
        ["docker", "exec", WEB, "test", "-f", "/var/www/moodledata/climaintenance.html"], check=False).returncode == 0
    assert status["maintenance"] is maintenance
    assert status["wwwroot"] == "http://127.0.0.1:8180"
    assert status["application_cache_plugin"] == "file"  # one web host: cache topology local (Moodle's file store)
    FIGURES.append(f"FIGURE site_status over stdio: median {sorted(times)[2]:.2f} s, min {min(times):.2f} s (5 calls)")


def test_read_only_server_refuses_backup_now_called_by_name(work, stack):
    before = engine("list")["backups"]

    async def go():
        async with stdio(work) as client:
            return await call(client, "backup_now", SITE)

    result = asyncio.run(go())
    assert result.is_error and text(result).startswith("refused: backup_now is a changing tool"), text(result)
    assert engine("list")["backups"] == before


def test_http_needs_the_bearer_token(http_server):
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "backup_now", "arguments": SITE}}
    assert httpx2.post(http_server["url"], json=body, timeout=10).status_code == 401
    wrong = httpx2.post(http_server["url"], json=body, headers={"Authorization": "Bearer not-the-token"}, timeout=10)
    assert wrong.status_code == 401


def test_backup_now_runs_as_a_job_a_second_caller_is_busy_and_list_backups_shows_it(http_server):
    before = {b["backup_id"] for b in engine("list")["backups"]}
    progress: list = []

    async def go():
        async with http(http_server) as one, http(http_server) as two:
            started = time.monotonic()
            first, second = await asyncio.gather(call(one, "backup_now", SITE), call(two, "backup_now", SITE))
            answered = time.monotonic() - started
            winner = first if not first.is_error else second
            job = await follow(one, winner.structured_content["job_id"], progress)
            listed = await call(one, "list_backups", SITE)
            shown = await call(one, "show_backup", {**SITE, "backup_id": job["result"]["backup_id"]})
            return first, second, answered, job, listed, shown

    first, second, answered, job, listed, shown = asyncio.run(go())
    assert sorted([first.is_error, second.is_error]) == [False, True]
    busy = first if first.is_error else second
    assert text(busy).startswith(f"busy: site {PROJECT} is running backup_now"), text(busy)
    assert answered < 10, "backup_now must answer with a job id at once"
    assert job["status"] == "successful", job
    assert progress and any("Back up the site now" in (m or "") for _, m in progress), progress[:5]
    backup_id = job["result"]["backup_id"]
    assert backup_id not in before and backup_id in {b["backup_id"] for b in engine("list")["backups"]}
    assert backup_id in {b["backup_id"] for b in listed.structured_content["backups"]}
    assert shown.structured_content["backup_id"] == backup_id and shown.structured_content["database_tables"] > 0
    STATE["backup_id"] = backup_id
    FIGURES.append(f"FIGURE backup_now through MCP (HTTP, job): {job['elapsed_seconds']} s, "
                   f"{len(progress)} progress notifications")


def test_restore_drill_through_mcp_passes(http_server):
    progress: list = []

    async def go():
        async with http(http_server) as client:
            started = await call(client, "restore_drill", {**SITE, "backup_id": STATE["backup_id"]})
            job = await follow(client, started.structured_content["job_id"], progress)
            last = await call(client, "last_restore_drill", SITE)
            resource = await client.read_resource(f"moodle://{PROJECT}/drills/last")
            return job, last, resource

    job, last, resource = asyncio.run(go())
    assert job["status"] == "successful", job
    assert job["result"]["success"] is True and job["result"]["backup_id"] == STATE["backup_id"]
    assert last.structured_content["report"]["backup_id"] == STATE["backup_id"]
    assert json.loads(resource.contents[0].text)["backup_id"] == STATE["backup_id"]
    ANSWERS.append(resource.contents[0].text)
    FIGURES.append(f"FIGURE restore_drill through MCP (HTTP, job): {job['elapsed_seconds']} s")


def test_destructive_tools_without_a_valid_plan_are_refused_and_change_nothing(http_server):
    before = container_running(WEB)
    backups = engine("list")["backups"]

    async def go():
        async with http(http_server) as client:
            no_plan = await call(client, "apply_upgrade", {**SITE, "image": before["image"], "confirmation": "made-up"})
            restore = await call(client, "restore", {**SITE, "backup_id": STATE["backup_id"], "confirmation": ""})
            plan = (await call(client, "plan_restore", {**SITE, "backup_id": STATE["backup_id"]})).structured_content
            if plan["status"] == "running":
                plan = await follow(client, plan["job_id"], [])
            confirmation = plan["result"]["confirmation"]
            STATE["confirmations"] = [confirmation]
            # a restore confirmation is not an upgrade confirmation, and a presented confirmation is spent
            other = await call(client, "apply_upgrade", {**SITE, "image": before["image"], "confirmation": confirmation})
            spent = await call(client, "restore", {**SITE, "backup_id": STATE["backup_id"], "confirmation": confirmation})
            upgrade_plan = (await call(client, "plan_upgrade", {**SITE, "image": before["image"]})).structured_content
            if upgrade_plan["status"] == "running":
                upgrade_plan = await follow(client, upgrade_plan["job_id"], [])
            STATE["confirmations"].append(upgrade_plan["result"]["confirmation"])
            # the plan confirms the image it planned, not another one
            other_image = await call(client, "apply_upgrade", {**SITE, "image": before["image"] + "-other",
                                                               "confirmation": upgrade_plan["result"]["confirmation"]})
            return no_plan, restore, plan, other, spent, upgrade_plan, other_image

    no_plan, restore, plan, other, spent, upgrade_plan, other_image = asyncio.run(go())
    assert no_plan.is_error and "call plan_upgrade first" in text(no_plan)
    assert restore.is_error and "call plan_restore first" in text(restore)
    assert plan["status"] == "successful", plan
    assert plan["result"]["restorable"] is True and plan["result"]["backup_id"] == STATE["backup_id"]
    assert other.is_error and "the plan token is for restore" in text(other)
    assert spent.is_error and "call plan_restore first" in text(spent)
    assert upgrade_plan["status"] == "successful", upgrade_plan
    assert upgrade_plan["result"]["nothing_to_do"] is True, upgrade_plan["result"]["plan"]
    assert upgrade_plan["result"]["plan"].startswith(f"Nothing to do: {PROJECT} already runs {before['image']}")
    assert other_image.is_error and "the plan token is for upgrade" in text(other_image)
    assert container_running(WEB) == before
    assert engine("list")["backups"] == backups
    FIGURES.append(f"FIGURE plan_restore through MCP: {plan['elapsed_seconds']} s, "
                   f"plan_upgrade: {upgrade_plan['elapsed_seconds']} s")


def test_audit_log_has_every_call_and_no_secret_appears_anywhere(work, http_server):
    for errlog in STATE.get("errlogs", []):
        errlog.close()
    entries = [json.loads(line) for line in (work / "audit.jsonl").read_text().splitlines()]
    assert collections.Counter(e["tool"] for e in entries) == collections.Counter(CALLS)
    assert {e["outcome"] for e in entries} == {"ok", "refused", "busy"}
    for entry in entries:
        assert {"time", "client", "transport", "tool", "arguments", "outcome", "result", "duration_ms"} <= set(entry)
        assert entry["arguments"].get("confirmation") in (None, "", "***")
    audit_text = (work / "audit.jsonl").read_text()
    assert STATE["confirmations"] and not [c for c in STATE["confirmations"] if c in audit_text]
    site_secrets = SECRETS_DIR / "secrets" / f"localhost-{PROJECT}"
    values = {p.name: p.read_text().strip() for p in site_secrets.iterdir() if p.is_file()}
    values["restic-password"] = (SECRETS_DIR / "restic-password").read_text().strip()
    values["bearer token"] = http_server["token"]
    assert len([v for v in values.values() if len(v) >= 8]) >= 5, sorted(values)
    haystacks = {"answers": "\n".join(ANSWERS), "audit log": (work / "audit.jsonl").read_text(),
                 "http server stderr": (work / "http-stderr.log").read_text(),
                 "stdio servers stderr": (work / "stdio-stderr.log").read_text()}
    leaks = [(name, where) for name, value in values.items() if len(value) >= 8
             for where, hay in haystacks.items() if value in hay]
    assert not leaks, leaks
    FIGURES.append(f"{len(entries)} audit entries, {len(ANSWERS)} answers scanned for {len(values)} secrets")
