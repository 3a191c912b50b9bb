"""moodle-platform-mcp: start the MCP server over stdio (default) or streamable HTTP.

    moodle-platform-mcp --site moodle=inventories/local                       # read-only, stdio
    moodle-platform-mcp --site moodle=inventories/local --allow-changes       # + backup_now, restore_drill
    moodle-platform-mcp --site moodle=inventories/local --transport http --token-file ~/.mcp-token
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import os
import secrets
import socket
import sys
from pathlib import Path

from moodle_platform_mcp import __version__
from moodle_platform_mcp.guardrails import Mode, parse_site
from moodle_platform_mcp.server import GuardedServer, ServerConfig

TOKEN_ENV = "MOODLE_PLATFORM_MCP_TOKEN"  # noqa: S105 - the variable's name, not a token


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="moodle-platform-mcp", description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("--version", action="version", version=__version__)
    p.add_argument("--site", action="append", default=[], metavar="NAME=INVENTORY[@PROJECT]", required=True,
                   help="a site the server may touch (the allowlist): its name, inventory and Compose project")
    p.add_argument("--allow-changes", action="store_true", help="enable backup_now, restore_drill, job_cancel")
    p.add_argument("--allow-destructive", action="store_true",
                   help="also enable restore and apply_upgrade (each still needs a plan's confirmation)")
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    p.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--token-file", type=Path,
                   help=f"HTTP bearer token file (or ${TOKEN_ENV}); on loopback without one a token is generated "
                        "into <state-dir>/http-token")
    p.add_argument("--state-dir", type=Path, default=Path.home() / ".moodle-platform" / "mcp",
                   help="locks, generated token, default audit log")
    p.add_argument("--audit-log", type=Path, help="JSON-lines audit log (default <state-dir>/audit.jsonl)")
    p.add_argument("--ansible-config", type=Path, default=os.environ.get("ANSIBLE_CONFIG") or None,
                   help="ansible.cfg for the runs (default $ANSIBLE_CONFIG)")
    p.add_argument("--plan-ttl", type=float, default=300.0, help="seconds a plan's confirmation stays valid")
    p.add_argument("--call-timeout", type=float, default=30.0, help="seconds per tool call (jobs run longer)")
    p.add_argument("--prometheus-url", help="Prometheus of the sites (for the alerts tool)")
    p.add_argument("--redact-file", action="append", default=[], type=Path,
                   help="a file whose content must never appear in an answer or log (e.g. a site's secret files)")
    return p


def is_loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
    except (OSError, ValueError):
        return False


def http_token(args) -> tuple[str | None, str]:
    """The bearer token and where it came from; None when none was given."""
    if args.token_file:
        token = args.token_file.read_text(encoding="utf-8").strip()
        return (token or None), str(args.token_file)
    token = os.environ.get(TOKEN_ENV, "").strip()
    return (token or None), f"${TOKEN_ENV}"


def generated_token(state_dir: Path) -> tuple[str, Path]:
    path = state_dir / "http-token"
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return token, path


class BearerAuth:
    """ASGI middleware: every HTTP request needs `Authorization: Bearer <token>` (constant-time compare)."""

    def __init__(self, app, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                body = json.dumps({"error": "unauthorized: a valid bearer token is required"}).encode()
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        sites = [parse_site(spec) for spec in args.site]
    except ValueError as exc:
        print(f"moodle-platform-mcp: {exc}", file=sys.stderr)
        return 2
    if len({s.name for s in sites}) != len(sites):
        print("moodle-platform-mcp: a site name is given twice", file=sys.stderr)
        return 2
    known = [p.read_text(encoding="utf-8", errors="replace") for p in args.redact_file]
    token = None
    if args.transport == "http":
        token, source = http_token(args)
        if token is None:
            if not is_loopback(args.host):
                print(f"moodle-platform-mcp: refusing to listen on {args.host} (not a loopback address) without a "
                      f"bearer token: give --token-file or ${TOKEN_ENV}", file=sys.stderr)
                return 2
            token, path = generated_token(args.state_dir)
            source = str(path)
            print(f"moodle-platform-mcp: generated a bearer token into {path}", file=sys.stderr)
        known.append(token)
    config = ServerConfig(
        sites=sites, mode=Mode(allow_changes=args.allow_changes, allow_destructive=args.allow_destructive),
        state_dir=args.state_dir, audit_log=args.audit_log or args.state_dir / "audit.jsonl",
        ansible_config=Path(args.ansible_config).resolve() if args.ansible_config else None,
        plan_ttl=args.plan_ttl, call_timeout=args.call_timeout, prometheus_url=args.prometheus_url,
        known_secrets=known, transport=args.transport)
    server = GuardedServer(config)
    print(f"moodle-platform-mcp {__version__}: {config.mode.name}, sites {', '.join(s.name for s in sites)}, "
          f"audit log {config.audit_log}", file=sys.stderr)
    if args.transport == "stdio":
        server.run("stdio")
        return 0
    import anyio
    import uvicorn

    app = BearerAuth(server.streamable_http_app(host=args.host), token)
    print(f"moodle-platform-mcp: streamable HTTP on http://{args.host}:{args.port}/mcp (bearer token from {source})",
          file=sys.stderr, flush=True)
    uv = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning"))
    anyio.run(uv.serve)
    return 0
