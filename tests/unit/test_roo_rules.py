"""The agent configuration, checked without a model: the roo rules' event routes use only tools the MCP
server has, in a safe order; the client configs start the real server (SDK client over stdio)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import anyio
import pytest
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from moodle_platform_mcp.guardrails import Mode, parse_site
from moodle_platform_mcp.server import GuardedServer, ServerConfig

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / ".roo" / "rules" / "01-moodle-platform-mcp.md"
ALERT_RULES = ROOT / "collections/ansible_collections/moodle/platform/roles/monitoring/files/rules/moodle.yml"
PSEUDO_STEPS = {"report", "ask"}


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roo")
    srv = GuardedServer(ServerConfig(sites=[parse_site(f"moodle={ROOT / 'tests/unit/mcp-no-hosts.yml'}")],
                                     mode=Mode(allow_destructive=True), state_dir=tmp, audit_log=None))

    async def go():
        async with Client(srv) as client:
            return {t.name: t.annotations for t in (await client.list_tools()).tools}

    return anyio.run(go)


def routes() -> dict:
    block = re.search(r"```yaml\n(.*?)```", RULES.read_text(), re.S)
    assert block, f"{RULES} has no yaml block of routes"
    return yaml.safe_load(block.group(1))["routes"]


def step(item) -> tuple[str, dict]:
    if isinstance(item, str):
        return item, {}
    (name, options), = item.items()
    return name, options if isinstance(options, dict) else {"text": options}


def test_alert_routes_name_alerts_the_monitoring_role_defines():
    alerts = {r["alert"] for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    named = {event for event in routes() if event.startswith("Moodle")}
    assert named and named <= alerts, named - alerts


@pytest.mark.parametrize("event", list(routes()))
def test_route_is_safe(event, tools):
    steps = [step(item) for item in routes()[event]]
    assert steps[0][0] in tools and tools[steps[0][0]].read_only_hint, f"{event}: start read-only"
    seen: list[str] = []
    for name, options in steps:
        if name in PSEUDO_STEPS:
            seen.append(name)
            continue
        assert name in tools, f"{event}: the server has no tool {name}"
        hints = tools[name]
        if hints.destructive_hint:
            plan = options.get("confirmation")
            assert options.get("needs") == "--allow-destructive", f"{event}: {name} needs --allow-destructive"
            assert plan in seen and "ask" in seen[seen.index(plan):], f"{event}: {name} only after {plan} and a person"
        elif not hints.read_only_hint:
            assert options.get("needs") == "--allow-changes", f"{event}: {name} needs --allow-changes"
            assert any(tools[s].read_only_hint for s in seen if s in tools), f"{event}: look before changing"
        seen.append(name)


def test_roo_always_allows_only_read_only_tools(tools):
    config = json.loads((ROOT / ".roo" / "mcp.json").read_text())["mcpServers"]["moodle-platform"]
    assert config["alwaysAllow"] and all(tools[name].read_only_hint for name in config["alwaysAllow"])


@pytest.mark.parametrize("path", [".roo/mcp.json", ".mcp.json"])
def test_client_config_starts_the_server_read_only(path, tmp_path):
    config = json.loads((ROOT / path).read_text())["mcpServers"]["moodle-platform"]

    def resolve(value: str) -> str:
        value = value.replace("${workspaceFolder}", str(ROOT))
        return value if value.startswith("/") or "=" in value or value.startswith("-") else str(ROOT / value)

    command = resolve(config["command"])
    assert Path(command).is_file(), f"{command}: run make mcp-install"
    args = [resolve(a) if "=" not in a else a.split("=", 1)[0] + "=" + resolve(a.split("=", 1)[1]) for a in config["args"]]
    site = parse_site(args[args.index("--site") + 1])
    assert site.inventory.is_relative_to(ROOT / "inventories")
    # The local inventory may hold a real site: point the test server at one without hosts.
    args[args.index("--site") + 1] = f"{site.name}={ROOT / 'tests/unit/mcp-no-hosts.yml'}"
    params = StdioServerParameters(command=command, args=[*args, "--state-dir", str(tmp_path)],
                                   env={k: resolve(v) for k, v in config.get("env", {}).items()})

    async def go():
        async with Client(params) as client:
            return {t.name for t in (await client.list_tools()).tools}, await client.call_tool("list_sites", {})

    names, sites = anyio.run(go)
    assert "site_status" in names and "backup_now" not in names and "restore" not in names
    assert sites.structured_content["mode"] == "read-only" and sites.structured_content["sites"][0]["site"] == "moodle"
