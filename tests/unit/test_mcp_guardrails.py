"""Guardrails of the MCP server (mcp-server/), without Docker: the real classes, the real server driven by
the SDK's own client (in process, over stdio and over HTTP), refusals that happen before any playbook runs.

The operations themselves (playbooks through ansible-runner against the stand-in site) are tested in
tests/day2/test_mcp_server.py.
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx2
import mcp_types
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from moodle_platform_mcp.cli import main as cli_main
from moodle_platform_mcp.guardrails import (
    CHANGE,
    DESTRUCTIVE,
    READ,
    REDACTED,
    Allowlist,
    AuditLog,
    Busy,
    Mode,
    PlanTokens,
    Redactor,
    Refused,
    SiteLock,
    parse_site,
)
from moodle_platform_mcp.server import GuardedServer, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
# An inventory without Docker hosts: nothing these tests do may reach a site, even by mistake.
INVENTORY = Path(__file__).resolve().parent / "mcp-no-hosts.yml"
SERVER_ENV = {"PYTHONPATH": str(ROOT / "mcp-server" / "src"), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
CHANGING = {"backup_now", "restore_drill", "job_cancel"}
DESTRUCTIVE_TOOLS = {"restore", "apply_upgrade"}


# ------------------------------------------------------------------------------------------------ mode
def test_mode_read_only_by_default_refuses_changes_and_destruction():
    mode = Mode()
    assert mode.name == "read-only" and mode.allows(READ)
    for kind in (CHANGE, DESTRUCTIVE, "something-else"):
        assert not mode.allows(kind)
    with pytest.raises(Refused, match="--allow-changes"):
        mode.check("backup_now", CHANGE)
    with pytest.raises(Refused, match="--allow-destructive"):
        mode.check("restore", DESTRUCTIVE)


def test_mode_changes_do_not_include_destruction():
    mode = Mode(allow_changes=True)
    assert mode.allows(CHANGE) and not mode.allows(DESTRUCTIVE)
    assert Mode(allow_destructive=True).allows(CHANGE)


# ------------------------------------------------------------------------------------------------ plan tokens
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_plan_token_is_single_use_and_bound_to_site_and_subject():
    tokens = PlanTokens(ttl_seconds=60, clock=Clock())
    for wrong, match in ((("restore", "other", "20261124T021500Z-day2"), "not restore of other"),
                         (("upgrade", "day2", "20261124T021500Z-day2"), "for restore of day2"),
                         (("restore", "day2", "20261125T021500Z-day2"), "not restore of day2 .20261125")):
        token = tokens.issue("restore", "day2", "20261124T021500Z-day2")
        with pytest.raises(Refused, match=match):
            tokens.consume(token, *wrong)
        with pytest.raises(Refused, match="no valid plan token"):  # a wrong presentation spends it
            tokens.consume(token, "restore", "day2", "20261124T021500Z-day2")
    token = tokens.issue("restore", "day2", "20261124T021500Z-day2")
    tokens.consume(token, "restore", "day2", "20261124T021500Z-day2")
    with pytest.raises(Refused, match="no valid plan token"):
        tokens.consume(token, "restore", "day2", "20261124T021500Z-day2")


def test_plan_token_expires():
    clock = Clock()
    tokens = PlanTokens(ttl_seconds=60, clock=clock)
    token = tokens.issue("upgrade", "day2", "img:2 major=False")
    clock.now += 61
    with pytest.raises(Refused, match="expired"):
        tokens.consume(token, "upgrade", "day2", "img:2 major=False")


@pytest.mark.parametrize("garbage", [None, "", "x" * 32, 42, {"token": "x"}])
def test_plan_token_garbage_is_refused(garbage):
    tokens = PlanTokens()
    tokens.issue("upgrade", "day2", "img")
    with pytest.raises(Refused, match="call plan_upgrade first"):
        tokens.consume(garbage, "upgrade", "day2", "img")


# ------------------------------------------------------------------------------------------------ site lock
def test_site_lock_second_caller_is_busy_until_release(tmp_path):
    locks = SiteLock(tmp_path)
    release = locks.acquire("day2", "backup_now (job 1)")
    with pytest.raises(Busy, match=r"busy: site day2 is running backup_now \(job 1\)"):
        locks.acquire("day2", "backup_now (job 2)")
    other = locks.acquire("other", "backup_now (job 3)")  # another site is independent
    release()
    locks.acquire("day2", "backup_now (job 4)")()
    other()


def test_site_lock_holds_across_processes(tmp_path):
    """Two server processes (stdio for one client, HTTP for another) share the lock."""
    locks = SiteLock(tmp_path)
    release = locks.acquire("day2", "restore (job 9)")
    code = ("import sys; from pathlib import Path; from moodle_platform_mcp.guardrails import SiteLock, Busy\n"
            f"try:\n SiteLock(Path({str(tmp_path)!r})).acquire('day2', 'x')\nexcept Busy as e:\n print(e); sys.exit(3)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **SERVER_ENV},
                          check=False)
    assert proc.returncode == 3 and "restore (job 9)" in proc.stdout, proc.stderr
    release()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **SERVER_ENV},
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------------------------------------ redaction
def test_redactor_removes_known_values_secret_keys_and_secret_looking_text():
    redactor = Redactor(["s3cr3t-db-password", "short"])
    text = redactor.text("login with s3cr3t-db-password; MYSQL_PWD=hunter22 password: abc123 "
                         "Authorization: Bearer abcdefghijklmnopq s3://AKIAABCDEFGHIJKLMNOP https://u:pw@host/x")
    for secret in ("s3cr3t-db-password", "hunter22", "abc123", "abcdefghijklmnopq", "AKIAABCDEFGHIJKLMNOP", "u:pw@"):
        assert secret not in text, text
    assert "short" not in redactor._known  # too short to redact by value (would mangle ordinary text)
    data = redactor.data({"db_password": "x1y2z3", "nested": [{"secret_key": "k" * 20, "name": "web"}],
                          "backup_id": "20261124T021500Z-day2", "restic_password_file": "/etc/x"})
    assert data["db_password"] == REDACTED and data["nested"][0]["secret_key"] == REDACTED
    assert data["nested"][0]["name"] == "web" and data["backup_id"] == "20261124T021500Z-day2"
    assert redactor.text("backup 20261124T021500Z-day2 ok, 3 files") == "backup 20261124T021500Z-day2 ok, 3 files"


def test_audit_log_is_json_lines_owner_only_with_redacted_arguments(tmp_path):
    log = AuditLog(tmp_path / "audit.jsonl", Redactor(["bearer-token-value"]))
    log.record(client="c/1", transport="stdio", tool="t", arguments={"site": "day2", "password": "pw-123456"},
               outcome="ok", result="said bearer-token-value", duration_ms=1.25)
    assert stat.S_IMODE((tmp_path / "audit.jsonl").stat().st_mode) == 0o600
    entry = json.loads((tmp_path / "audit.jsonl").read_text().splitlines()[0])
    assert entry["arguments"] == {"site": "day2", "password": "***"}
    assert "bearer-token-value" not in json.dumps(entry)
    assert {"time", "client", "tool", "arguments", "outcome", "result", "duration_ms"} <= set(entry)


# ------------------------------------------------------------------------------------------------ allowlist
def test_allowlist_and_site_specs(tmp_path):
    site = parse_site(f"day2={INVENTORY}")
    assert site.project == "day2" and site.inventory == INVENTORY
    assert parse_site(f"school={INVENTORY}@moodle").project == "moodle"
    for bad in ("day2", f"Day2={INVENTORY}", f"../x={INVENTORY}", f"day2={tmp_path / 'missing'}",
                f"day2={INVENTORY}@a;b"):
        with pytest.raises(ValueError):
            parse_site(bad)
    allow = Allowlist([site])
    assert allow.get("day2") is site
    for name in ("moodle", None, ["day2"], "day2 "):
        with pytest.raises(Refused, match="not in this server's allowlist"):
            allow.get(name)


# ------------------------------------------------------------------------------------------------ the server
def server(tmp_path, **mode) -> GuardedServer:
    return GuardedServer(ServerConfig(sites=[parse_site(f"day2={INVENTORY}")], mode=Mode(**mode),
                                      state_dir=tmp_path, audit_log=tmp_path / "audit.jsonl"))


def audit(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]


def test_every_tool_has_annotations_and_read_only_lists_only_read_tools(tmp_path):
    async def go():
        async with Client(server(tmp_path, allow_destructive=True)) as client:
            everything = (await client.list_tools()).tools
        async with Client(server(tmp_path)) as client:
            read_only = (await client.list_tools()).tools
        return everything, read_only

    everything, read_only = anyio.run(go)
    assert {t.name for t in everything} >= CHANGING | DESTRUCTIVE_TOOLS | {"site_status", "plan_upgrade", "job_status"}
    for tool in everything:
        a = tool.annotations
        assert a is not None and None not in (a.read_only_hint, a.destructive_hint, a.idempotent_hint), tool.name
        assert a.destructive_hint == (tool.name in DESTRUCTIVE_TOOLS), tool.name
        assert a.read_only_hint == (tool.name not in CHANGING | DESTRUCTIVE_TOOLS), tool.name
    assert {t.name for t in read_only} == {t.name for t in everything} - CHANGING - DESTRUCTIVE_TOOLS


def test_disabled_tools_are_refused_when_called_by_name(tmp_path):
    async def go():
        async with Client(server(tmp_path)) as client:
            ro = {name: await client.call_tool(name, args) for name, args in (
                ("backup_now", {"site": "day2"}), ("restore", {"site": "day2", "backup_id": "latest", "confirmation": "x"}),
                ("job_cancel", {"job_id": "abc"}))}
        async with Client(server(tmp_path, allow_changes=True)) as client:
            changes = await client.call_tool("apply_upgrade", {"site": "day2", "image": "i", "confirmation": "x"})
        return ro, changes

    ro, changes = anyio.run(go)
    for name, result in ro.items():
        assert result.is_error and result.content[0].text.startswith(f"refused: {name} is a"), result
    assert changes.is_error and "--allow-destructive" in changes.content[0].text
    entries = audit(tmp_path)
    assert [(e["tool"], e["outcome"]) for e in entries] == [
        ("backup_now", "refused"), ("restore", "refused"), ("job_cancel", "refused"), ("apply_upgrade", "refused")]
    assert all(e["arguments"].get("confirmation") in (None, "***") for e in entries)


def test_destructive_tools_need_a_plan_confirmation_and_take_no_lock_without_one(tmp_path):
    srv = server(tmp_path, allow_destructive=True)

    async def go():
        async with Client(srv) as client:
            missing = await client.call_tool("apply_upgrade", {"site": "day2", "image": "i:2", "confirmation": "nope"})
            token = srv.tokens.issue("upgrade", "day2", "i:2 major=False")
            wrong_image = await client.call_tool("apply_upgrade", {"site": "day2", "image": "i:3", "confirmation": token})
            reused = await client.call_tool("apply_upgrade", {"site": "day2", "image": "i:2", "confirmation": token})
            other_site = await client.call_tool("restore", {"site": "other", "backup_id": "b", "confirmation": "x"})
            return missing, wrong_image, reused, other_site

    missing, wrong_image, reused, other_site = anyio.run(go)
    assert missing.is_error and "call plan_upgrade first" in missing.content[0].text
    assert wrong_image.is_error and "not upgrade of day2 (i:3" in wrong_image.content[0].text
    # the token was spent on the refused attempt for another image: a plan confirms exactly one thing
    assert reused.is_error and "call plan_upgrade first" in reused.content[0].text
    assert other_site.is_error and "allowlist" in other_site.content[0].text
    assert not srv.jobs.running()
    SiteLock(tmp_path / "locks").acquire("day2", "free")()  # no lock was left behind


def test_unknown_tool_and_bad_arguments_are_refused_and_audited(tmp_path):
    async def go():
        async with Client(server(tmp_path)) as client:
            return (await client.call_tool("exec_shell", {"site": "day2", "cmd": "id"}),
                    await client.call_tool("plan_upgrade", {"site": "day2", "image": "{{ lookup('pipe', 'id') }}"}),
                    await client.call_tool("logs", {"site": "day2", "service": "../../etc"}),
                    await client.call_tool("show_backup", {"site": "day2", "backup_id": "x; rm -rf /"}))

    unknown, jinja, bad_service, bad_id = anyio.run(go)
    assert unknown.is_error and "unknown tool" in unknown.content[0].text
    assert jinja.is_error and "is not an image reference" in jinja.content[0].text
    assert bad_service.is_error and "service must be one of" in bad_service.content[0].text
    assert bad_id.is_error and "is not a backup id" in bad_id.content[0].text
    assert [e["outcome"] for e in audit(tmp_path)] == ["refused"] * 4
    assert not SiteLock(tmp_path / "locks").acquire("day2", "free")()  # no job took the site


def test_stdio_transport_with_the_sdk_client(tmp_path):
    params = StdioServerParameters(command=sys.executable, env=SERVER_ENV, args=[
        "-m", "moodle_platform_mcp", "--site", f"day2={INVENTORY}", "--state-dir", str(tmp_path)])

    async def go():
        async with Client(params) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            sites = await client.call_tool("list_sites", {})
            prompts = {p.name for p in (await client.list_prompts()).prompts}
            return tools, sites, prompts

    tools, sites, prompts = anyio.run(go)
    assert "site_status" in tools and "backup_now" not in tools
    assert sites.structured_content["mode"] == "read-only"
    assert sites.structured_content["sites"][0]["site"] == "day2"
    assert prompts == {"triage_failing_site", "upgrade_runbook"}


# ------------------------------------------------------------------------------------------------ HTTP transport
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_http_refuses_a_non_loopback_bind_without_a_token(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MOODLE_PLATFORM_MCP_TOKEN", raising=False)
    code = cli_main(["--site", f"day2={INVENTORY}", "--transport", "http", "--host", "0.0.0.0",  # noqa: S104 - the refusal under test
                     "--state-dir", str(tmp_path)])
    assert code == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert not (tmp_path / "http-token").exists()


def test_http_needs_the_bearer_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("t0ken-for-the-unit-test-1234567890\n")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moodle_platform_mcp", "--site", f"day2={INVENTORY}",
                             "--transport", "http", "--port", str(port), "--token-file", str(token_file),
                             "--state-dir", str(tmp_path)], env={**os.environ, **SERVER_ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                anonymous = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=5)
                break
            except httpx2.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("the HTTP server did not start")
        wrong = httpx2.post(url, headers={"Authorization": "Bearer wrong"}, json={}, timeout=5)
        assert anonymous.status_code == 401 and wrong.status_code == 401
        assert "t0ken" not in anonymous.text + wrong.text

        async def go():
            async with httpx2.AsyncClient(headers={"Authorization": "Bearer t0ken-for-the-unit-test-1234567890"}) as http, \
                    Client(streamable_http_client(url, http_client=http)) as client:
                return (await client.call_tool("list_sites", {})).structured_content

        assert anyio.run(go)["sites"][0]["site"] == "day2"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "t0ken-for-the-unit-test" not in err
    assert [e["tool"] for e in audit(tmp_path)] == ["list_sites"]
    assert audit(tmp_path)[0]["transport"] == "http"


def test_job_status_streams_progress_and_job_cancel_stops_a_job(tmp_path):
    """The job machinery with a job whose steps come from this test (the playbook runs that fill steps in
    production are tested on the stand-in site): notifications for each step, cancel, lock released."""
    srv = server(tmp_path, allow_changes=True)
    release = srv.locks.acquire("day2", "test job")
    gate = threading.Event()

    def work(job):
        for step in ("Preflight", "Install restic and the backup engine", "Back up the site now"):
            job.steps.append(step)
            time.sleep(0.3)
        gate.wait(20)
        return {"done": not job.cancel_requested}

    job = srv.jobs.start("backup_now", "day2", work, release)
    progress = []

    async def on_progress(value, total, message):
        progress.append((value, message))

    async def go():
        async with Client(srv) as client:
            running = await client.call_tool("job_status", {"job_id": job.id, "wait_seconds": 2},
                                             progress_callback=on_progress)
            busy = await client.call_tool("backup_now", {"site": "day2"})
            cancel = await client.call_tool("job_cancel", {"job_id": job.id})
            gate.set()
            final = await client.call_tool("job_status", {"job_id": job.id, "wait_seconds": 10})
            return running, busy, cancel, final

    running, busy, cancel, final = anyio.run(go)
    assert running.structured_content["status"] == "running"
    assert [m for _, m in progress] == [f"backup_now on day2: {s}" for s in
                                        ("Preflight", "Install restic and the backup engine", "Back up the site now")]
    assert [v for v, _ in progress] == [1, 2, 3]
    assert busy.is_error and busy.content[0].text.startswith("busy: site day2 is running test job")
    assert not cancel.is_error
    assert final.structured_content["status"] == "canceled"
    srv.locks.acquire("day2", "after")()  # released when the job ended
    assert [e["outcome"] for e in audit(tmp_path)] == ["ok", "busy", "ok", "ok"]


def test_alerts_reads_firing_alerts_from_the_prometheus_api(tmp_path):
    """alerts against a stand-in of Prometheus' /api/v1/alerts (an HTTP server of this test): firing ones
    only, secret-looking annotation text redacted."""
    body = json.dumps({"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "MoodleRestoreDrillFailed", "project": "day2"}, "state": "firing",
         "annotations": {"summary": "drill failed; db password=hunter2hunter2"}},
        {"labels": {"alertname": "MoodleCronStale", "project": "day2"}, "state": "pending", "annotations": {}},
    ]}}).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/api/v1/alerts" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    prometheus = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=prometheus.serve_forever, daemon=True).start()
    srv = GuardedServer(ServerConfig(sites=[parse_site(f"day2={INVENTORY}")], state_dir=tmp_path, audit_log=None,
                                     prometheus_url=f"http://127.0.0.1:{prometheus.server_address[1]}"))

    async def go():
        async with Client(srv) as client:
            return await client.call_tool("alerts", {"site": "day2"})

    try:
        result = anyio.run(go)
    finally:
        prometheus.shutdown()
    alerts = result.structured_content["alerts"]
    assert [a["labels"]["alertname"] for a in alerts] == ["MoodleRestoreDrillFailed"]
    assert "hunter2hunter2" not in result.model_dump_json()


def test_destructive_tools_ask_the_person_where_the_client_supports_elicitation(tmp_path):
    """After a valid plan confirmation, a client with elicitation is asked; a decline or confirm=false is
    refused before any job starts (and the confirmation is spent). An approval starts the job."""
    srv = server(tmp_path, allow_destructive=True)
    asked = []

    def person(answer):
        async def callback(context, params):
            asked.append(params.message)
            return mcp_types.ElicitResult(**answer)
        return callback

    async def call(answer, image):
        token = srv.tokens.issue("upgrade", "day2", f"{image} major=False")
        async with Client(srv, elicitation_callback=person(answer)) as client:
            return await client.call_tool("apply_upgrade", {"site": "day2", "image": image, "confirmation": token})

    declined = anyio.run(call, {"action": "decline"}, "i:2")
    unconfirmed = anyio.run(call, {"action": "accept", "content": {"confirm": False}}, "i:2")
    assert declined.is_error and "not approved by the user (decline)" in declined.content[0].text
    assert unconfirmed.is_error and "confirm=false" in unconfirmed.content[0].text
    assert len(asked) == 2 and all("Upgrade site day2 to image i:2" in m for m in asked)
    assert not srv.jobs.running()
    srv.locks.acquire("day2", "free")()  # refused before the site lock was taken

    approved = anyio.run(call, {"action": "accept", "content": {"confirm": True}}, "i:4")
    job_id = approved.structured_content["job_id"]
    assert not approved.is_error and job_id
    job = srv.jobs.get(job_id)
    assert job.done.wait(180), "the approved job did not end"
    assert job.tool == "apply_upgrade" and job.finished  # approved: the upgrade job started (no site in this inventory)
    srv.locks.acquire("day2", "after")()
    outcomes = [e["outcome"] for e in audit(tmp_path)]
    # each call: the question (input-required, answered by the client's retry), then the outcome
    assert outcomes == ["input-required", "refused", "input-required", "refused", "input-required", "ok"]
