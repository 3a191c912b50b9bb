"""The collection's playbooks and modules, run through ansible-runner (the engine AWX uses), and jobs.

No operation is implemented here: a backup is moodle.platform.backup, a restore moodle.platform.restore,
site facts are moodle.platform.moodle_info, backup listings are the backup engine the backup role
installs on the Docker host (moodle-backup).  This module only starts them and reads their events.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

from moodle_platform_mcp.guardrails import Redactor, Site

# The hosts the collection's playbooks target (their default for moodle_platform_docker_hosts).
HOST_PATTERN = "docker_hosts"


class OperationError(Exception):
    """An operation failed; the message is already redacted."""


@dataclass
class RunResult:
    status: str
    rc: int | None
    failures: list[str]
    # task name -> result of the last ok event of that task (module return values)
    results: dict[str, dict]
    stats: dict
    host: str | None


class AnsibleRunner:
    def __init__(self, redactor: Redactor, ansible_config: Path | None = None, work_dir: Path | None = None):
        self.redactor = redactor
        self.ansible_config = ansible_config
        self.work_dir = work_dir

    def _env(self) -> dict[str, str]:
        env = {"ANSIBLE_FORCE_COLOR": "false", "ANSIBLE_NOCOLOR": "true",
               # ansible-playbook/ansible of the server's own environment (the venv it runs in)
               "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        if self.ansible_config:
            env["ANSIBLE_CONFIG"] = str(self.ansible_config)
        return env

    def run(self, site: Site, *, playbook: str | None = None, module: str | None = None, module_args: str = "",
            extravars: dict | None = None, on_task: Callable[[str], None] | None = None,
            should_cancel: Callable[[], bool] | None = None, timeout: int = 3600) -> RunResult:
        """Run a playbook (FQCN, e.g. moodle.platform.backup) or an ad-hoc module against the site's inventory.

        The private data dir (artifacts: job events, extra vars) is a fresh 0700 temporary directory,
        removed afterwards: events may carry values the server must not keep."""
        private = Path(tempfile.mkdtemp(prefix="moodle-platform-mcp-", dir=self.work_dir))
        failures: list[str] = []
        results: dict[str, dict] = {}
        hosts: list[str] = []

        def event_handler(event: dict) -> bool:
            data = event.get("event_data", {})
            kind = event.get("event")
            if kind == "playbook_on_task_start" and on_task:
                on_task(data.get("task", ""))
            elif kind == "runner_on_ok":
                results[data.get("task", "")] = data.get("res", {})
                if data.get("host") and data["host"] not in hosts:
                    hosts.append(data["host"])
            elif kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors"):
                failures.append(_failure_message(data.get("res", {}), kind))
            return True  # keep the event (artifacts)

        try:
            kwargs: dict[str, Any] = {}
            if playbook:
                kwargs.update(playbook=playbook)
            else:
                kwargs.update(module=module, module_args=module_args, host_pattern=HOST_PATTERN)
            runner = ansible_runner.run(
                private_data_dir=str(private),
                inventory=str(site.inventory),
                extravars=extravars or {},
                envvars=self._env(),
                event_handler=event_handler,
                cancel_callback=should_cancel or (lambda: False),
                quiet=True,
                timeout=timeout,
                **kwargs,
            )
            status, rc, stats = runner.status, runner.rc, dict(runner.stats or {})
            if not results and not failures and status != "successful":
                # no event (e.g. a bad inventory): the runner's own output says why
                failures.append(runner.stdout.read()[-1500:] or status)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        return RunResult(status=status, rc=rc, failures=[self.redactor.text(f) for f in failures],
                         results=results, stats=stats, host=hosts[0] if hosts else None)

    def module(self, site: Site, module: str, module_args: str, timeout: int = 120) -> dict:
        """One module on the site's Docker host; its return values (raises OperationError on failure)."""
        result = self.run(site, module=module, module_args=module_args, timeout=timeout)
        if result.status != "successful" or result.failures:
            raise OperationError(f"{module} failed on site {site.name}: {'; '.join(result.failures) or result.status}")
        if len(result.results) != 1:
            raise OperationError(f"{module}: expected one Docker host in {site.inventory} ({HOST_PATTERN}), "
                                 f"got {len(result.results)}")
        return next(iter(result.results.values()))


def _failure_message(res: dict, kind: str) -> str:
    """A failed task's reason: the module's msg; for a command, what the program said (the backup engine
    prints its refusal as JSON on stdout, docker on stderr) instead of 'non-zero return code'."""
    msg = str(res.get("msg") or kind)
    if "rc" in res:
        try:
            engine = json.loads(res.get("stdout") or "")
        except ValueError:
            engine = None
        said = engine.get("msg") if isinstance(engine, dict) and engine.get("msg") else (res.get("stderr") or "")
        if said:
            msg = f"{msg}: {str(said).strip()[-800:]}"
    return msg


# ------------------------------------------------------------------------------------------------ jobs
@dataclass
class Job:
    id: str
    tool: str
    site: str
    started: float = field(default_factory=time.time)
    finished: float | None = None
    status: str = "running"  # running, successful, failed, canceled
    steps: list[str] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    cancel_requested: bool = False
    done: threading.Event = field(default_factory=threading.Event)

    def summary(self) -> dict:
        out = {"job_id": self.id, "tool": self.tool, "site": self.site, "status": self.status,
               "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
               "elapsed_seconds": round((self.finished or time.time()) - self.started, 1),
               "steps_done": len(self.steps), "current_step": self.steps[-1] if self.steps else None}
        if self.finished:
            out["result"] = self.result
            if self.error:
                out["error"] = self.error
        return out


class Jobs:
    """Long operations run in threads; callers get the job id at once and follow it with job_status."""

    def __init__(self, keep: int = 50):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.keep = keep

    def start(self, tool: str, site: str, work: Callable[[Job], Any], release: Callable[[], None]) -> Job:
        job = Job(id=uuid.uuid4().hex[:12], tool=tool, site=site)
        with self._lock:
            self._jobs[job.id] = job
            for old in sorted((j for j in self._jobs.values() if j.finished), key=lambda j: j.started)[:-self.keep]:
                del self._jobs[old.id]

        def target() -> None:
            try:
                job.result = work(job)
                job.status = "canceled" if job.cancel_requested else "successful"
            except OperationError as exc:
                job.status, job.error = ("canceled" if job.cancel_requested else "failed"), str(exc)
            except Exception as exc:  # the job must end with a status whatever happens
                job.status, job.error = "failed", f"{type(exc).__name__} in the server: {exc}"
            finally:
                job.finished = time.time()
                release()
                job.done.set()

        threading.Thread(target=target, name=f"job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: Any) -> Job | None:
        return self._jobs.get(job_id) if isinstance(job_id, str) else None

    def running(self) -> list[Job]:
        return [j for j in self._jobs.values() if not j.finished]
