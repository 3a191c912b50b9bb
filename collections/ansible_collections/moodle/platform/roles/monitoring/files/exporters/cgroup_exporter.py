#!/usr/bin/python3
"""Per-container memory and CPU metrics from the Docker host's cgroups (build mode's cAdvisor).

Debian packages no cAdvisor, so this small exporter reads what the alert and dashboards need,
under cAdvisor's metric names so the same rules work with cAdvisor in registry mode:
  container_memory_usage_bytes, container_memory_working_set_bytes (usage - inactive file cache),
  container_spec_memory_limit_bytes (0 = no limit), container_cpu_usage_seconds_total.
Labels: name, compose_project, compose_service, id (12 hex).  Container names come from the
engine's per-container config.v2.json (read-only mount, labels only; nothing else is read).
cgroup v1 (memory/ and cpuacct/ hierarchies) and v2 (unified) are both handled.
Only the standard library: it runs in the Debian-built monitoring image with python3.
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CGROUP_ROOT = Path(os.environ.get("CGROUP_EXPORTER_CGROUP_ROOT", "/host/cgroup"))
CONTAINERS_DIR = Path(os.environ.get("CGROUP_EXPORTER_CONTAINERS_DIR", "/host/containers"))
PROJECT = os.environ.get("CGROUP_EXPORTER_PROJECT", "")  # only this Compose project, if set
LISTEN = os.environ.get("CGROUP_EXPORTER_LISTEN", "0.0.0.0:9338")
UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a page-rounded 2**63-1


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if text == "max":
        return 0
    try:
        return int(text)
    except ValueError:
        return None


def _stat(path: Path) -> dict[str, int]:
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    out = {}
    for line in lines:
        key, value = line.partition(" ")[::2]
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _container_dirs() -> dict[str, dict[str, Path]]:
    """Map container id -> {'memory': dir, 'cpu': dir} for v1, or {'unified': dir} for v2."""
    found: dict[str, dict[str, Path]] = {}
    v1_memory = CGROUP_ROOT / "memory"
    if v1_memory.is_dir():
        for kind, sub in (("memory", "memory"), ("cpu", "cpuacct")):
            for parent in ("docker", "system.slice"):
                base = CGROUP_ROOT / sub / parent
                if base.is_dir():
                    for d in base.iterdir():
                        cid = d.name.removeprefix("docker-").removesuffix(".scope")
                        if len(cid) == 64 and d.is_dir():
                            found.setdefault(cid, {})[kind] = d
    else:
        for parent in ("docker", "system.slice"):
            base = CGROUP_ROOT / parent
            if base.is_dir():
                for d in base.iterdir():
                    cid = d.name.removeprefix("docker-").removesuffix(".scope")
                    if len(cid) == 64 and d.is_dir():
                        found.setdefault(cid, {})["unified"] = d
    return found


def _labels(cid: str) -> dict[str, str] | None:
    try:
        config = json.loads((CONTAINERS_DIR / cid / "config.v2.json").read_text())
    except (OSError, ValueError):
        return None
    labels = (config.get("Config") or {}).get("Labels") or {}
    project = labels.get("com.docker.compose.project", "")
    if PROJECT and project != PROJECT:
        return None
    return {
        "name": config.get("Name", "").lstrip("/"),
        "compose_project": project,
        "compose_service": labels.get("com.docker.compose.service", ""),
        "id": cid[:12],
    }


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def collect() -> str:
    series: dict[str, list[tuple[dict[str, str], float]]] = {
        "container_memory_usage_bytes": [],
        "container_memory_working_set_bytes": [],
        "container_spec_memory_limit_bytes": [],
        "container_cpu_usage_seconds_total": [],
    }
    for cid, dirs in sorted(_container_dirs().items()):
        labels = _labels(cid)
        if labels is None:
            continue
        if "unified" in dirs:
            d = dirs["unified"]
            usage = _read_int(d / "memory.current")
            limit = _read_int(d / "memory.max")
            inactive = _stat(d / "memory.stat").get("inactive_file", 0)
            cpu_usec = _stat(d / "cpu.stat").get("usage_usec")
            cpu = cpu_usec / 1e6 if cpu_usec is not None else None
        else:
            mem = dirs.get("memory")
            usage = _read_int(mem / "memory.usage_in_bytes") if mem else None
            limit = _read_int(mem / "memory.limit_in_bytes") if mem else None
            inactive = _stat(mem / "memory.stat").get("total_inactive_file", 0) if mem else 0
            cpu_ns = _read_int(dirs["cpu"] / "cpuacct.usage") if "cpu" in dirs else None
            cpu = cpu_ns / 1e9 if cpu_ns is not None else None
        if usage is not None:
            series["container_memory_usage_bytes"].append((labels, usage))
            series["container_memory_working_set_bytes"].append((labels, max(usage - inactive, 0)))
        if limit is not None:
            series["container_spec_memory_limit_bytes"].append((labels, 0 if limit >= UNLIMITED else limit))
        if cpu is not None:
            series["container_cpu_usage_seconds_total"].append((labels, cpu))
    out = []
    for name, samples in series.items():
        kind = "counter" if name.endswith("_total") else "gauge"
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            out.append(f"{name}{{{rendered}}} {value:.17g}")
    return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.split("?")[0] != "/metrics":
            self.send_error(404)
            return
        body = collect().encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):  # scrapes every 15 s would flood the log
        pass


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--once":
        sys.stdout.write(collect())
        return 0
    host, port = LISTEN.rpartition(":")[::2]
    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
