"""The MCP server: day-2 tools of moodle.platform sites, guarded at call time.

Every tool call goes through GuardedServer.call_tool: the server's mode (read-only by default), the
site allowlist, the per-call timeout, redaction of everything returned and the audit log.  The tools
themselves only start the collection's playbooks/modules (runner.AnsibleRunner) and shape their answers.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, Elicit, ElicitationResult, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ResourceError
from mcp_types import CallToolResult, InputRequiredResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from moodle_platform_mcp import __version__
from moodle_platform_mcp.guardrails import (
    CHANGE,
    DESTRUCTIVE,
    READ,
    Allowlist,
    AuditLog,
    Busy,
    Mode,
    PlanTokens,
    Redactor,
    Refused,
    Site,
    SiteLock,
)
from moodle_platform_mcp.runner import AnsibleRunner, Job, Jobs, OperationError

# Where the collection's roles put things on the Docker host (moodle.platform.backup/restore defaults);
# an inventory that moves them sets backup_state_dir / restore_drill_report, which the ad-hoc
# commands read through the same variables.
ENGINE = "/usr/local/sbin/moodle-backup"
STATE_DIR = "{{ backup_state_dir | default('/var/lib/moodle-platform/backup/' ~ backup_project) }}"
DRILL_REPORT = ("{{ restore_drill_report | default('/var/lib/moodle-platform/backup/' ~ restore_project "
                "~ '/drills/last.json') }}")
SERVICES = ("web", "cron", "db", "redis")
MAX_WAIT = 25.0


@dataclass
class ServerConfig:
    sites: list[Site]
    mode: Mode = field(default_factory=Mode)
    state_dir: Path = field(default_factory=lambda: Path.home() / ".moodle-platform" / "mcp")
    audit_log: Path | None = None
    ansible_config: Path | None = None
    plan_ttl: float = 300.0
    call_timeout: float = 30.0
    prometheus_url: str | None = None
    known_secrets: list[str] = field(default_factory=list)
    transport: str = "stdio"


@dataclass(frozen=True)
class ToolSpec:
    kind: str
    site_argument: bool = True


class Approval(BaseModel):
    """What a person is asked (MCP elicitation) before a destructive operation starts."""

    confirm: bool = Field(description="Start this destructive operation now")


def _can_ask(ctx: Context) -> bool:
    caps = ctx.client_capabilities
    return caps is not None and caps.elicitation is not None and (caps.elicitation.form is not None
                                                                  or caps.elicitation.url is None)


def _ask_restore(site: str, backup_id: str, ctx: Context) -> Elicit[Approval] | None:
    """The approval question for restore, where the client can ask its user (after the plan confirmation)."""
    if not _can_ask(ctx):
        return None
    return Elicit(f"Restore site {site} from backup {backup_id} (a safety backup is taken first). "
                  "This is destructive. Start it now?", Approval)


def _ask_upgrade(site: str, image: str, ctx: Context) -> Elicit[Approval] | None:
    """The approval question for apply_upgrade, where the client can ask its user."""
    if not _can_ask(ctx):
        return None
    return Elicit(f"Upgrade site {site} to image {image} (backup first, automatic rollback on failure). "
                  "This is destructive. Start it now?", Approval)


def annotations(kind: str, idempotent: bool, title: str) -> ToolAnnotations:
    return ToolAnnotations(title=title, read_only_hint=kind == READ, destructive_hint=kind == DESTRUCTIVE,
                           idempotent_hint=idempotent, open_world_hint=False)


def _project_vars(site: Site) -> dict:
    return {"backup_project": site.project, "restore_project": site.project, "upgrade_project": site.project}


def _manifest_summary(manifest: dict) -> dict:
    """The parts of a backup manifest a person reads first (the full manifest is a resource)."""
    moodle, db, data = manifest.get("moodle", {}), manifest.get("database", {}), manifest.get("moodledata", {})
    return {
        "backup_id": manifest.get("backup_id"), "created": manifest.get("created") or manifest.get("time"),
        "moodle_release": moodle.get("release"), "moodle_version": moodle.get("version"),
        "database_size_bytes": db.get("size_bytes"), "database_tables": db.get("table_count"),
        "moodledata_files": data.get("file_count"), "moodledata_size_bytes": data.get("size_bytes"),
        "duration_seconds": manifest.get("duration_seconds"),
        "image": (manifest.get("image") or {}).get("reference"),
    }


class GuardedServer(MCPServer):
    """MCPServer whose tools/list shows only what the mode allows and whose tools/call enforces it."""

    def __init__(self, config: ServerConfig):
        super().__init__(name="moodle-platform", version=__version__, instructions=(
            "Day-2 operations of moodle.platform sites. Read-only tools are always available; changing tools "
            "need a server started with --allow-changes, destructive ones (restore, apply_upgrade) "
            "--allow-destructive plus the confirmation returned by plan_restore/plan_upgrade. Long operations "
            "return a job id: follow them with job_status."))
        self.config = config
        self.mode = config.mode
        self.allowlist = Allowlist(config.sites)
        self.redactor = Redactor(config.known_secrets)
        self.audit = AuditLog(config.audit_log, self.redactor)
        self.tokens = PlanTokens(config.plan_ttl)
        self.locks = SiteLock(config.state_dir / "locks")
        self.jobs = Jobs()
        self.ansible = AnsibleRunner(self.redactor, config.ansible_config)
        self.specs: dict[str, ToolSpec] = {}
        self._register()

    # ---------------------------------------------------------------------------------- the guard
    async def list_tools(self):
        return [t for t in await super().list_tools() if t.name in self.specs and self.mode.allows(self.specs[t.name].kind)]

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None):
        started = time.monotonic()
        arguments = dict(arguments or {})
        client = self._client(context)
        outcome, job_id = "ok", None
        try:
            spec = self.specs.get(name)
            if spec is None:
                raise Refused(f"refused: unknown tool {name[:64]!r}")
            self.mode.check(name, spec.kind)
            if spec.site_argument:
                self.allowlist.get(arguments.get("site"))
            with anyio.fail_after(self.config.call_timeout):
                result = await super().call_tool(name, arguments, context)
            if isinstance(result, InputRequiredResult):
                # The approval question (elicitation) goes to the client; the call is retried with the answer.
                self.audit.record(client=client, transport=self.config.transport, tool=name,
                                  arguments={k: ("***" if k == "confirmation" and v else v) for k, v in arguments.items()},
                                  outcome="input-required", result="approval asked",
                                  duration_ms=(time.monotonic() - started) * 1000, job_id=None)
                return result
            result = self._redacted(result)
            if result.is_error:
                outcome = "refused" if any(t.text.startswith(("refused:", "busy:")) for t in result.content
                                           if isinstance(t, TextContent)) else "error"
            if isinstance(result.structured_content, dict):
                job_id = result.structured_content.get("job_id")
        except Exception as exc:
            reason = self._root(exc)
            if isinstance(reason, Busy):
                outcome, message = "busy", str(reason)
            elif isinstance(reason, Refused):
                outcome, message = "refused", str(reason)
            elif isinstance(reason, TimeoutError):
                outcome, message = "error", (f"{name} did not answer within {self.config.call_timeout:.0f} s "
                                             "(the per-call timeout; long operations run as jobs)")
            elif isinstance(reason, OperationError):
                outcome, message = "error", str(reason)
            else:
                outcome, message = "error", f"{name} failed: {type(reason).__name__}: {reason}"
                sys.stderr.write(self.redactor.text(traceback.format_exc()))
            result = CallToolResult(content=[TextContent(type="text", text=self.redactor.text(message))], is_error=True)
        text = " ".join(t.text for t in result.content if isinstance(t, TextContent))
        for confirmation in _confirmations(result.structured_content):
            text = text.replace(confirmation, "***")  # the caller gets it; the audit log does not keep it
        self.audit.record(client=client, transport=self.config.transport, tool=name,
                          arguments={k: ("***" if k == "confirmation" and v else v) for k, v in arguments.items()},
                          outcome=outcome, result=text[:1000], duration_ms=(time.monotonic() - started) * 1000,
                          job_id=job_id)
        return result

    @staticmethod
    def _root(exc: BaseException) -> BaseException:
        seen = exc
        while seen.__cause__ is not None and not isinstance(seen, (Refused, OperationError)):
            seen = seen.__cause__
        return seen

    def _redacted(self, result: CallToolResult) -> CallToolResult:
        content = [TextContent(type="text", text=self.redactor.text(c.text)) if isinstance(c, TextContent) else c
                   for c in result.content]
        structured = self.redactor.data(result.structured_content) if result.structured_content is not None else None
        return CallToolResult(content=content, structured_content=structured, is_error=result.is_error)

    @staticmethod
    def _client(context: Context | None) -> str:
        try:
            info = context.session.client_params.client_info
            return f"{info.name}/{info.version}"
        except AttributeError:
            return "unknown"

    # ---------------------------------------------------------------------------------- helpers
    def _tool(self, fn: Callable, kind: str, idempotent: bool, title: str, site_argument: bool = True) -> None:
        self.specs[fn.__name__] = ToolSpec(kind=kind, site_argument=site_argument)
        self.add_tool(fn, annotations=annotations(kind, idempotent, title), structured_output=True)

    def site(self, name: str) -> Site:
        return self.allowlist.get(name)

    @staticmethod
    def _approved(tool: str, approval: ElicitationResult[Approval] | None) -> str:
        """A person's answer to the approval question (MCP elicitation, form mode), asked where the client
        can ask its user: declined, cancelled or not confirmed -> refused, nothing started. Clients without
        elicitation rely on the plan confirmation alone."""
        if approval is None:
            return "not asked (the client has no elicitation)"
        if approval.action != "accept" or not approval.data.confirm:
            raise Refused(f"refused: {tool} was not approved by the user ({approval.action}"
                          f"{', confirm=false' if approval.action == 'accept' else ''}); nothing was started")
        return "approved by the user"

    async def _blocking(self, fn: Callable, *args, **kwargs):
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), abandon_on_cancel=True)

    def _engine(self, site: Site, *args: str) -> dict:
        """The backup engine the backup role installed on the site's Docker host (moodle-backup)."""
        argv = [ENGINE, "--config", f"{STATE_DIR}/config.json", *args]
        run = self.ansible.run(site, module="ansible.builtin.command", module_args=shlex.join(argv),
                               extravars=_project_vars(site), timeout=120)
        res = next(iter(run.results.values()), None)
        if res is None:
            detail = "; ".join(run.failures)
            # the engine prints its refusal as JSON on stdout; ansible reports "non-zero return code"
            raise OperationError(f"backup engine on site {site.name}: {detail or run.status}")
        return json.loads(res.get("stdout") or "null")

    def _start(self, tool: str, site: Site, work: Callable[[Job], Any]) -> Job:
        release = self.locks.acquire(site.name, f"{tool} (started {time.strftime('%H:%M:%S', time.gmtime())} UTC)")
        try:
            return self.jobs.start(tool, site.name, work, release)
        except Exception:
            release()
            raise

    async def _follow(self, job: Job, wait_seconds: float, ctx: Context | None) -> dict:
        """Wait up to wait_seconds for the job, sending a progress notification for every playbook task."""
        deadline = time.monotonic() + max(0.0, min(float(wait_seconds), MAX_WAIT))
        sent = 0
        while True:
            while sent < len(job.steps):
                sent += 1
                if ctx is not None:
                    await ctx.report_progress(sent, None, self.redactor.text(f"{job.tool} on {job.site}: {job.steps[sent - 1]}"))
            if job.done.is_set() or time.monotonic() >= deadline:
                return job.summary()
            await anyio.sleep(0.25)

    def _playbook(self, job: Job, site: Site, playbook: str, extravars: dict) -> Any:
        run = self.ansible.run(site, playbook=playbook, extravars={**_project_vars(site), **extravars},
                               on_task=job.steps.append, should_cancel=lambda: job.cancel_requested)
        if run.status != "successful":
            raise OperationError(f"{playbook} {run.status} on site {site.name}: {'; '.join(run.failures) or 'no detail'}")
        return run

    # ---------------------------------------------------------------------------------- tools
    def _register(self) -> None:
        server = self

        async def list_sites() -> dict[str, Any]:
            """The sites this server may touch (its allowlist) and the mode it runs in."""
            return {"mode": server.mode.name,
                    "sites": [{"site": s.name, "project": s.project, "inventory": str(s.inventory)}
                              for s in server.allowlist.sites.values()]}

        async def site_status(site: str) -> dict[str, Any]:
            """Live state of a site (moodle.platform.moodle_info): release, versions, maintenance mode, pending
            upgrade, last cron run, cache stores."""
            target = server.site(site)
            facts = (await server._blocking(server.ansible.module, target, "moodle.platform.moodle_info",
                                            f"container={target.project}-web-1")).get("moodle", {})
            return {"site": site, **{k: facts.get(k) for k in (
                "installed", "code_release", "code_version", "branch", "db_version", "db_release", "upgrade_pending",
                "maintenance", "last_cron_start", "last_cron_age", "cache_stores", "application_cache_plugin",
                "wwwroot")}}

        async def list_backups(site: str) -> dict[str, Any]:
            """Complete backups of a site in its restic repository (backup id and time), oldest first."""
            target = server.site(site)
            return {"site": site, **await server._blocking(server._engine, target, "list")}

        async def show_backup(site: str, backup_id: str = "latest") -> dict[str, Any]:
            """Summary of one backup's manifest (release, sizes, duration, image); the whole manifest is the
            resource moodle://<site>/backups/<backup_id>."""
            target = server.site(site)
            manifest = await server._blocking(server._engine, target, "show", _backup_id(backup_id))
            return {"site": site, **_manifest_summary(manifest)}

        async def last_restore_drill(site: str) -> dict[str, Any]:
            """The report of the site's last restore drill (success, backup id, checks, duration)."""
            return {"site": site, "report": await server._blocking(server._drill_report, server.site(site))}

        async def alerts(site: str) -> dict[str, Any]:
            """Firing alerts from the Prometheus API (when the server was given --prometheus-url)."""
            server.site(site)
            if not server.config.prometheus_url:
                return {"site": site, "monitoring": "not configured (start the server with --prometheus-url)",
                        "alerts": []}
            data = await server._blocking(_prometheus_alerts, server.config.prometheus_url)
            return {"site": site, "alerts": [a for a in data if a.get("state") == "firing"]}

        async def logs(site: str, service: str = "web", lines: int = 100) -> dict[str, Any]:
            """The last lines of a service's container log (web, cron, db, redis), secrets redacted."""
            target = server.site(site)
            if service not in SERVICES:
                raise Refused(f"refused: service must be one of {', '.join(SERVICES)}")
            lines = max(1, min(int(lines), 1000))
            argv = ["docker", "logs", "--tail", str(lines), f"{target.project}-{service}-1"]
            res = await server._blocking(server.ansible.module, target, "ansible.builtin.command", shlex.join(argv))
            out = (res.get("stdout", "") + "\n" + res.get("stderr", "")).strip().splitlines()
            return {"site": site, "service": service, "lines": out[-lines:]}

        async def plan_restore(site: str, backup_id: str = "latest", wait_seconds: float = MAX_WAIT,
                               ctx: Context | None = None) -> dict[str, Any]:
            """Check that a backup can be restored into the site (the backup engine's verify: manifest, snapshots,
            dump checksum, Moodle version). When it can, the answer carries a confirmation for restore (single
            use, short-lived)."""
            target = server.site(site)
            wanted = _backup_id(backup_id)

            def work(job: Job) -> dict:
                job.steps.append(f"verify backup {wanted}")
                verdict = server._engine(target, "verify", wanted, "--target-container", f"{target.project}-web-1")
                out = {"backup_id": verdict.get("backup_id"), "restorable": bool(verdict.get("ok")),
                       "problems": verdict.get("problems", []),
                       "backup": _manifest_summary(verdict.get("manifest") or {})}
                if out["restorable"]:
                    out["confirmation"] = server.tokens.issue("restore", site, str(verdict["backup_id"]))
                    out["confirmation_expires_in_seconds"] = int(server.config.plan_ttl)
                    out["next"] = f"restore(site={site!r}, backup_id={verdict['backup_id']!r}, confirmation=...)"
                return out

            return await server._follow(server._start("plan_restore", target, work), wait_seconds, ctx)

        async def plan_upgrade(site: str, image: str, allow_major: bool = False, wait_seconds: float = MAX_WAIT,
                               ctx: Context | None = None) -> dict[str, Any]:
            """The upgrade role's plan phase only (moodle.platform.upgrade with upgrade_plan_only): versions, whether
            a database upgrade is pending, refusals. When the plan passes, the answer carries a confirmation for
            apply_upgrade (single use, short-lived)."""
            target, image = server.site(site), _image(image)

            def work(job: Job) -> dict:
                run = server._playbook(job, target, "moodle.platform.upgrade",
                                       {"upgrade_image": image, "upgrade_plan_only": True, "upgrade_allow_major": allow_major})
                plan = run.results.get("Show the plan", {}).get("msg", "")
                return {"image": image, "plan": plan, "nothing_to_do": plan.startswith("Nothing to do"),
                        "confirmation": server.tokens.issue("upgrade", site, f"{image} major={bool(allow_major)}"),
                        "confirmation_expires_in_seconds": int(server.config.plan_ttl)}

            return await server._follow(server._start("plan_upgrade", target, work), wait_seconds, ctx)

        async def job_status(job_id: str, wait_seconds: float = 0, ctx: Context | None = None) -> dict[str, Any]:
            """State of a job (running, successful, failed, canceled) and its result; with wait_seconds (at most
            25) it waits for the job, sending progress notifications for each step."""
            job = server.jobs.get(job_id)
            if job is None:
                raise Refused(f"refused: no job {str(job_id)[:32]!r} on this server")
            return await server._follow(job, wait_seconds, ctx)

        async def job_cancel(job_id: str) -> dict[str, Any]:
            """Cancel a running backup, drill or plan (restore and apply_upgrade cannot be stopped half-way)."""
            job = server.jobs.get(job_id)
            if job is None:
                raise Refused(f"refused: no job {str(job_id)[:32]!r} on this server")
            if job.tool in ("restore", "apply_upgrade") and not job.finished:
                raise Refused(f"refused: a {job.tool} is not stopped half-way (the role restores or rolls back itself)")
            job.cancel_requested = True
            return job.summary()

        async def backup_now(site: str, wait_seconds: float = 0, ctx: Context | None = None) -> dict[str, Any]:
            """Take a verified backup now (moodle.platform.backup). Returns a job id at once; follow it with
            job_status."""
            target = server.site(site)

            def work(job: Job) -> dict:
                run = server._playbook(job, target, "moodle.platform.backup", {"backup_run_now": True})
                manifest = run.results.get("Publish the manifest of this backup", {}).get("ansible_facts", {})
                return _manifest_summary(manifest.get("backup_result") or {})

            return await server._follow(server._start("backup_now", target, work), wait_seconds, ctx)

        async def restore_drill(site: str, backup_id: str = "latest", wait_seconds: float = 0,
                                ctx: Context | None = None) -> dict[str, Any]:
            """Restore a backup into a throwaway project, check it, record the report, remove it
            (moodle.platform.restore_drill); the site itself is not touched. Returns a job id at once."""
            target = server.site(site)

            def work(job: Job) -> dict:
                server._playbook(job, target, "moodle.platform.restore_drill", {"restore_backup_id": _backup_id(backup_id)})
                return server._drill_report(target)

            return await server._follow(server._start("restore_drill", target, work), wait_seconds, ctx)

        async def restore(site: str, backup_id: str, confirmation: str, wait_seconds: float = 0,
                          ctx: Context | None = None,
                          approval: Annotated[ElicitationResult[Approval], Resolve(_ask_restore)] = None,
                          ) -> dict[str, Any]:
            """DESTRUCTIVE: replace the site's data with a backup (moodle.platform.restore, after a safety backup).
            Needs the confirmation plan_restore returned for this site and backup."""
            target, backup_id = server.site(site), _backup_id(backup_id)
            server.tokens.consume(confirmation, "restore", site, backup_id)
            approved = server._approved("restore", approval)

            def work(job: Job) -> dict:
                server._playbook(job, target, "moodle.platform.restore", {"restore_backup_id": backup_id})
                return {"restored": backup_id, "approval": approved}

            return await server._follow(server._start("restore", target, work), wait_seconds, ctx)

        async def apply_upgrade(site: str, image: str, confirmation: str, allow_major: bool = False,
                                wait_seconds: float = 0, ctx: Context | None = None,
                                approval: Annotated[ElicitationResult[Approval], Resolve(_ask_upgrade)] = None,
                                ) -> dict[str, Any]:
            """DESTRUCTIVE: upgrade the site to an image (moodle.platform.upgrade: pre-upgrade backup, upgrade,
            verification, automatic rollback). Needs the confirmation plan_upgrade returned for this site and image."""
            target, image = server.site(site), _image(image)
            server.tokens.consume(confirmation, "upgrade", site, f"{image} major={bool(allow_major)}")
            approved = server._approved("apply_upgrade", approval)

            def work(job: Job) -> dict:
                run = server._playbook(job, target, "moodle.platform.upgrade",
                                       {"upgrade_image": image, "upgrade_allow_major": allow_major})
                return {"image": image, "plan": run.results.get("Show the plan", {}).get("msg", ""),
                        "approval": approved}

            return await server._follow(server._start("apply_upgrade", target, work), wait_seconds, ctx)

        self._tool(list_sites, READ, True, "Sites and mode", site_argument=False)
        self._tool(site_status, READ, True, "Site status")
        self._tool(list_backups, READ, True, "List backups")
        self._tool(show_backup, READ, True, "Show a backup")
        self._tool(last_restore_drill, READ, True, "Last restore drill")
        self._tool(alerts, READ, True, "Firing alerts")
        self._tool(logs, READ, True, "Service logs")
        self._tool(plan_restore, READ, True, "Plan a restore")
        self._tool(plan_upgrade, READ, True, "Plan an upgrade")
        self._tool(job_status, READ, True, "Job status", site_argument=False)
        self._tool(job_cancel, CHANGE, True, "Cancel a job", site_argument=False)
        self._tool(backup_now, CHANGE, False, "Back up now")
        self._tool(restore_drill, CHANGE, False, "Restore drill")
        self._tool(restore, DESTRUCTIVE, False, "Restore a backup")
        self._tool(apply_upgrade, DESTRUCTIVE, False, "Apply an upgrade")

        # ------------------------------------------------------------------ resources and prompts
        @self.resource("moodle://{site}/backups/{backup_id}", mime_type="application/json",
                       description="The manifest of a backup (secrets redacted)")
        async def backup_manifest(site: str, backup_id: str) -> str:
            target = server._resource_site(site)
            manifest = await server._blocking(server._engine, target, "show", _backup_id(backup_id))
            return json.dumps(server.redactor.data(manifest), indent=2, sort_keys=True)

        @self.resource("moodle://{site}/drills/last", mime_type="application/json",
                       description="The report of the site's last restore drill")
        async def drill_report(site: str) -> str:
            target = server._resource_site(site)
            report = await server._blocking(server._drill_report, target)
            return json.dumps(server.redactor.data(report), indent=2, sort_keys=True)

        @self.prompt(name="triage_failing_site", description="Triage a failing Moodle site with the read-only tools")
        def triage_failing_site(site: str) -> str:
            return (f"The Moodle site {site} is failing. Work read-only first: call site_status(site={site!r}) "
                    "(maintenance on? upgrade pending? cron older than an hour?), then alerts, then logs for web and "
                    "cron (and db when the web log shows database errors). Check last_restore_drill and list_backups "
                    "so the fallback is known. Report what you found and the smallest next step; do not call "
                    "restore or apply_upgrade without a person's go-ahead.")

        @self.prompt(name="upgrade_runbook", description="Upgrade a site to a new Moodle image, safely")
        def upgrade_runbook(site: str, image: str) -> str:
            return (f"Upgrade {site} to {image}: 1. site_status: no pending upgrade, maintenance off. 2. backup_now and "
                    "follow the job; then restore_drill on that backup and check it passed. 3. plan_upgrade "
                    f"(site={site!r}, image={image!r}): read the plan and any refusal. 4. Only with a person's "
                    "approval, apply_upgrade with the plan's confirmation (it expires), follow the job. 5. site_status "
                    "again: the new release, upgrade_pending false. If the job failed, the role rolled back: read "
                    "logs and report.")

    def _resource_site(self, name: str) -> Site:
        try:
            return self.allowlist.get(name)
        except Refused as exc:
            raise ResourceError(str(exc)) from None

    def _drill_report(self, site: Site) -> dict:
        run = self.ansible.run(site, module="ansible.builtin.slurp", module_args=f"src={DRILL_REPORT}",
                               extravars=_project_vars(site), timeout=120)
        res = next(iter(run.results.values()), None)
        if res is None:
            raise OperationError(f"no restore drill report on site {site.name} yet (run restore_drill): "
                                 f"{'; '.join(run.failures)}")
        return json.loads(base64.b64decode(res["content"]))


def _confirmations(data: Any) -> list[str]:
    """Plan confirmations anywhere in a result (plan_* answers, job_status of a plan job)."""
    if isinstance(data, dict):
        found = [v for k, v in data.items() if k == "confirmation" and isinstance(v, str) and v]
        return found + [c for v in data.values() for c in _confirmations(v)]
    if isinstance(data, list):
        return [c for v in data for c in _confirmations(v)]
    return []


def _backup_id(value: str) -> str:
    value = str(value)
    if value != "latest" and not all(c.isalnum() or c in "-_." for c in value):
        raise Refused(f"refused: {value[:64]!r} is not a backup id (e.g. 20261124T021500Z-moodle) or 'latest'")
    return value


# A Docker image reference (name[:tag][@digest]); nothing else reaches the playbooks' variables (a value with
# Jinja in it would be templated by Ansible).
IMAGE_REFERENCE = re.compile(r"^[a-z0-9][a-z0-9._/-]{0,200}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")


def _image(value: str) -> str:
    value = str(value)
    if not IMAGE_REFERENCE.match(value):
        raise Refused(f"refused: {value[:80]!r} is not an image reference (e.g. moodle-platform/moodle:<tag>)")
    return value


def _prometheus_alerts(url: str) -> list[dict]:
    with urllib.request.urlopen(url.rstrip("/") + "/api/v1/alerts", timeout=10) as response:  # noqa: S310 - operator's URL
        return json.load(response).get("data", {}).get("alerts", [])
