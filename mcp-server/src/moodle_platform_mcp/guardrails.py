"""Guardrails of the MCP server: what a tool may do, plan tokens, site locks, redaction, the audit log.

Everything here is enforced by the server when a tool is *called* (server.GuardedServer.call_tool),
not only by what tools/list shows.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

READ, CHANGE, DESTRUCTIVE = "read", "change", "destructive"
KINDS = (READ, CHANGE, DESTRUCTIVE)
REDACTED = "***"


class Refused(Exception):
    """A guardrail said no; the message says which one and what would allow the call."""


class Busy(Refused):
    """Another operation holds the site."""


# ------------------------------------------------------------------------------------------------ mode
@dataclass(frozen=True)
class Mode:
    """What the server was started to allow: read-only (default), changes, destructive changes."""

    allow_changes: bool = False
    allow_destructive: bool = False

    @property
    def name(self) -> str:
        if self.allow_destructive:
            return "destructive"
        return "changes" if self.allow_changes else "read-only"

    def allows(self, kind: str) -> bool:
        if kind == READ:
            return True
        if kind == CHANGE:
            return self.allow_changes or self.allow_destructive
        if kind == DESTRUCTIVE:
            return self.allow_destructive
        return False  # an unknown kind is never allowed

    def check(self, tool: str, kind: str) -> None:
        if self.allows(kind):
            return
        flag = "--allow-destructive" if kind == DESTRUCTIVE else "--allow-changes"
        raise Refused(f"refused: {tool} is a {'destructive' if kind == DESTRUCTIVE else 'changing'} tool and this "
                      f"server runs {self.name}; an operator must restart it with {flag} to allow it")


# ------------------------------------------------------------------------------------------------ allowlist
@dataclass(frozen=True)
class Site:
    """A site the server may touch: a Compose project on the Docker host(s) of an inventory."""

    name: str
    inventory: Path
    project: str


SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def parse_site(spec: str) -> Site:
    """NAME=INVENTORY or NAME=INVENTORY@PROJECT (project defaults to NAME, the Compose project name)."""
    name, sep, rest = spec.partition("=")
    if not sep or not rest:
        raise ValueError(f"--site {spec!r}: expected NAME=INVENTORY[@PROJECT]")
    inventory, _, project = rest.partition("@")
    project = project or name
    for value in (name, project):
        if not SITE_NAME.match(value):
            raise ValueError(f"--site {spec!r}: {value!r} is not a site/project name ([a-z0-9_-], at most 63)")
    path = Path(inventory).expanduser().resolve()
    if not path.exists():
        raise ValueError(f"--site {spec!r}: inventory {path} does not exist")
    return Site(name=name, inventory=path, project=project)


class Allowlist:
    def __init__(self, sites: Iterable[Site]):
        self.sites = {s.name: s for s in sites}

    def get(self, name: Any) -> Site:
        site = self.sites.get(name) if isinstance(name, str) else None
        if site is None:
            raise Refused(f"refused: site {str(name)[:64]!r} is not in this server's allowlist "
                          f"(allowed: {', '.join(sorted(self.sites)) or 'none'})")
        return site


# ------------------------------------------------------------------------------------------------ plan tokens
@dataclass
class _Plan:
    kind: str
    site: str
    subject: str
    expires: float


class PlanTokens:
    """Short-lived, single-use confirmations: plan_restore/plan_upgrade issue one for exactly the site and
    the backup/image they planned; restore/apply_upgrade must present it before it expires."""

    def __init__(self, ttl_seconds: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl_seconds
        self.clock = clock
        self._plans: dict[str, _Plan] = {}
        self._lock = threading.Lock()

    def issue(self, kind: str, site: str, subject: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = self.clock()
            self._plans = {t: p for t, p in self._plans.items() if p.expires > now}
            self._plans[token] = _Plan(kind, site, subject, now + self.ttl)
        return token

    def consume(self, token: Any, kind: str, site: str, subject: str) -> None:
        """Accept the token once (it is spent by any presentation, also a refused one) or refuse."""
        plan_tool = "plan_upgrade" if kind == "upgrade" else "plan_restore"
        with self._lock:
            plan = self._plans.get(token) if isinstance(token, str) else None
            if plan is None:
                raise Refused(f"refused: no valid plan token; call {plan_tool} first and present its token")
            if plan.expires <= self.clock():
                del self._plans[token]
                raise Refused(f"refused: the plan token expired ({int(self.ttl)} s); call {plan_tool} again")
            # spent on first presentation, also when it is for something else: a plan confirms one thing
            del self._plans[token]
            if (plan.kind, plan.site, plan.subject) != (kind, site, subject):
                raise Refused(f"refused: the plan token is for {plan.kind} of {plan.site} ({plan.subject}), "
                              f"not {kind} of {site} ({subject}); call {plan_tool} again")


# ------------------------------------------------------------------------------------------------ site lock
class SiteLock:
    """One operation per site at a time, across server processes on this machine (flock on a file)."""

    def __init__(self, lock_dir: Path):
        self.dir = lock_dir
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def acquire(self, site: str, holder: str) -> Callable[[], None]:
        path = self.dir / f"{site}.lock"
        handle = open(path, "a+", encoding="utf-8")  # held (and locked) until the operation ends
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.seek(0)
            current = handle.read().strip() or "another operation"
            handle.close()
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise Busy(f"busy: site {site} is running {current}; one operation per site at a time - "
                           "wait for it (job_status) and call again") from None
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(holder)
        handle.flush()

        def release() -> None:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

        return release


# ------------------------------------------------------------------------------------------------ redaction
SECRET_KEY = re.compile(r"pass(word|wd)?|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|"
                        r"authorization|cookie", re.IGNORECASE)
_TEXT_PATTERNS = [
    # key=value / key: value / "key": "value" where the key names a secret
    (re.compile(r"(?i)([\w.-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)[\w.-]*\"?\s*[=:]\s*\"?)"
                r"([^\s\"',;}]+)"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{16,}"), r"\1 " + REDACTED),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1" + REDACTED + "@"),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), REDACTED),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), REDACTED),
]


class Redactor:
    """Removes secrets from anything the server returns or writes: known secret values (the bearer token,
    files given with --redact-file), values under secret-looking keys, and secret-looking text."""

    def __init__(self, known: Iterable[str] = ()):
        self._known: set[str] = set()
        for value in known:
            self.add(value)

    def add(self, value: str | None) -> None:
        if value and len(value.strip()) >= 6:
            self._known.add(value.strip())

    def text(self, value: str) -> str:
        for secret in sorted(self._known, key=len, reverse=True):
            value = value.replace(secret, REDACTED)
        for pattern, replacement in _TEXT_PATTERNS:
            value = pattern.sub(replacement, value)
        return value

    def data(self, value: Any, keep: Iterable[str] = ()) -> Any:
        """A copy of JSON-like data with secrets replaced; keys in `keep` (e.g. a plan token the caller
        must receive) are left as they are at the top level."""
        keep = set(keep)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key in keep:
                    out[key] = item
                elif SECRET_KEY.search(str(key)) and item not in (None, "", False, True) and not isinstance(item, (int, float)):
                    out[key] = REDACTED
                else:
                    out[key] = self.data(item)
            return out
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


# ------------------------------------------------------------------------------------------------ audit log
@dataclass
class AuditLog:
    """JSON lines: time, client, tool, arguments (redacted), outcome, result summary (redacted), duration."""

    path: Path | None
    redactor: Redactor
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # The log is the operator's: owner-only, created before the first line.
            fd = os.open(self.path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600)
            os.close(fd)

    def record(self, *, client: str, transport: str, tool: str, arguments: dict, outcome: str, result: Any,
               duration_ms: float, job_id: str | None = None) -> None:
        if self.path is None:
            return
        summary = result if isinstance(result, str) else json.dumps(result, sort_keys=True, default=str)
        entry = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "client": client,
            "transport": transport,
            "tool": tool,
            "arguments": self.redactor.data(arguments),
            "outcome": outcome,
            "result": self.redactor.text(summary)[:1000],
            "duration_ms": round(duration_ms, 1),
        }
        if job_id:
            entry["job_id"] = job_id
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
