#!/usr/bin/env python3
"""make bench-stack: wrk against the web services of one deployed stack (compose_stack_bench), alternating.

Configurations (same image, database, Redis and moodledata, same resource limits):
  tuned         `web`: OPcache on, Redis sessions, Redis MUC application store (the stack's default)
  opcache-only  `web-opcache`: OPcache on, file sessions, Moodle's default file caches
  stock         `web-stock`: OPcache off, file sessions, Moodle's default file caches
  apcu-muc      `web-apcu`: tuned, but the MUC application caches on APCu and the local cache on tmpfs
                (an experiment on the single-node cache topology; APCu is per host)
  experiment    `web-exp` (only with compose_stack_bench_experiment): tuned plus that variable's environment
                and php.ini settings, e.g. BENCH_EXPERIMENT='{"php_ini": {"opcache.jit": "tracing"}}'
Set-up (idempotent): Moodle's own generator makes the course `bench` (size S: 100 students, a forum with
discussions); the students get a fresh random password (kept in memory only); each configuration logs
the 100 students in through its own login form, so each has its own sessions.  Pages: front page and
login page (anonymous), /my/, the course page and a forum discussion (the 100 sessions rotated).
Each page is measured on every configuration in turn, so load from other work on the machine falls on
all of them alike; between measurements the script waits until the measured service has finished what
wrk left running (a saturated configuration keeps working on abandoned requests for minutes).  The load
average (taken just before each measurement) is printed with every figure.  Results: a table, ratios, and
build/bench-stack/{results.json,latency.png}.  A benchmark, not a test.
"""

import argparse
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor

import docker
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
MOODLE_DIR = "/var/www/moodle"
# Inside the containers (private to www-data, 0700), removed at the end.
# In the moodledata volume: the web services have a read-only root and a tmpfs /tmp, where put_archive cannot write.
SETUP_DIR = "/var/www/moodledata/.moodle-platform-bench"
# name, compose service, default URL
CONFIGS = [
    ("tuned", "web", "http://127.0.0.1:8088"),
    ("opcache-only", "web-opcache", "http://127.0.0.1:8091"),
    ("stock", "web-stock", "http://127.0.0.1:8090"),
    ("apcu-muc", "web-apcu", "http://127.0.0.1:8092"),
    ("experiment", "web-exp", "http://127.0.0.1:8093"),
]
# name, path (formatted with the course and discussion ids), logged in
PAGES = [
    ("front page", "/", False),
    ("login page", "/login/index.php", False),
    ("/my/", "/my/", True),
    ("course page", "/course/view.php?id={course}", True),
    ("forum discussion", "/mod/forum/discuss.php?d={discussion}", True),
]
# The goal (issue 17), checked on the tuned configuration.
GOALS = {"/my/": (40.0, 2000.0), "front page": (90.0, None)}
GOAL_OVER_BASELINE = 1.25
LOGINTOKEN = re.compile(r'name="logintoken" value="([^"]+)"')
WRK_LINE = re.compile(
    r"BENCH rps=([\d.]+) p50_ms=([\d.]+) p95_ms=([\d.]+) p99_ms=([\d.]+) requests=(\d+) errors=(\d+) non200=(\d+)"
)


def loadavg():
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


class Stack:
    """The stack's containers, found by their Compose labels (project and service)."""

    def __init__(self, project):
        self.client = docker.from_env()
        self.project = project

    def container(self, service):
        found = self.client.containers.list(
            filters={"label": [f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]}
        )
        if not found:
            sys.exit(
                f"no running container of service {service} in project {self.project}: "
                "deploy with compose_stack_bench=true (make bench-stack does)"
            )
        return found[0]

    def put_files(self, service, files):
        """files: {name: (bytes, mode)} into SETUP_DIR, owned by www-data."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(os.path.basename(SETUP_DIR))
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o700, 33, 33
            tar.addfile(info)
            for name, (data, mode) in files.items():
                info = tarfile.TarInfo(f"{os.path.basename(SETUP_DIR)}/{name}")
                info.size, info.mode, info.uid, info.gid = len(data), mode, 33, 33
                tar.addfile(info, io.BytesIO(data))
        if not self.container(service).put_archive(os.path.dirname(SETUP_DIR), buffer.getvalue()):
            sys.exit(f"could not copy the set-up files into {service}")

    def php(self, service, args, php_options=()):
        """Run PHP as www-data in the service's container; return stdout, exit with stderr on failure."""
        code, (out, err) = self.container(service).exec_run(
            ["php", *php_options, *args], user="www-data", workdir=MOODLE_DIR, demux=True
        )
        if code != 0:
            sys.exit(f"{service}: php {' '.join(args)} failed ({code}):\n{(err or b'').decode()}{(out or b'').decode()}")
        return (out or b"").decode()

    def env(self, service):
        """The environment of the service's container, as a dict."""
        pairs = self.container(service).attrs["Config"]["Env"] or []
        return dict(item.split("=", 1) for item in pairs if "=" in item)

    def cpu_seconds(self):
        """CPU time used so far by each running service of the project (its container's cgroup), in seconds."""
        used = {}
        for container in self.client.containers.list(filters={"label": f"com.docker.compose.project={self.project}"}):
            stats = container.stats(stream=False, one_shot=True)
            service = container.labels.get("com.docker.compose.service", container.name)
            used[service] = stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
        return used

    def busy_processes(self, service):
        """Processes of the service's container that are running or waiting for a CPU (state R)."""
        container_id = self.container(service).id
        busy = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cgroup") as handle:
                    if container_id not in handle.read():
                        continue
                with open(f"/proc/{pid}/stat") as handle:
                    busy += handle.read().rsplit(")", 1)[1].split()[0] == "R"
            except OSError:
                continue
        return busy

    def drain(self, service, timeout=300):
        """Wait until the service has finished the requests wrk left behind: Apache keeps running a request
        whose client gave up (wrk's timeout, end of the run), and on a saturated configuration that
        backlog would otherwise run during the next configuration's measurement.  Returns seconds waited."""
        started = time.monotonic()
        idle = 0
        while time.monotonic() - started < timeout and idle < 2:
            idle = idle + 1 if self.busy_processes(service) == 0 else 0
            time.sleep(0.5)
        return time.monotonic() - started

    def cleanup(self, service):
        self.container(service).exec_run(["rm", "-rf", SETUP_DIR], user="www-data")


def wait_serving(base, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(base + "/login/index.php", timeout=30).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{base} does not serve Moodle's login page")
        time.sleep(2)


def prepare_site(stack, configs):
    """Course, students' passwords, the APCu MUC variant, caches purged; returns (ids, password)."""
    password = secrets.token_urlsafe(18)
    with open(os.path.join(HERE, "bench_setup.php"), "rb") as handle:
        script = handle.read()
    for _name, service, _base in [*configs, ("tuned", "web", None)]:
        stack.put_files(service, {"bench_setup.php": (script, 0o644)})
    setup = f"{SETUP_DIR}/bench_setup.php"
    if json.loads(stack.php("web", [setup, "course"]))["course"] is None:
        print("making the course `bench` with Moodle's generator (size S: 100 students) ...", flush=True)
        started = time.monotonic()
        stack.php(
            "web",
            ["admin/tool/generator/cli/maketestcourse.php", "--shortname=bench", "--size=S", "--bypasscheck", "--quiet"],
        )
        print(f"  made in {time.monotonic() - started:.0f} s", flush=True)
    stack.put_files("web", {"bench_setup.php": (script, 0o644), "password": (password.encode(), 0o600)})
    ids = json.loads(stack.php("web", [setup, "students", f"--password-file={SETUP_DIR}/password"]))
    print(f"course {ids['course']}, discussion {ids['discussion']}, {len(ids['users'])} students (passwords set)")
    for _name, service, base in configs:
        apcu = stack.env(service).get("MOODLE_MUC_CONFIG") == "apcu"
        if apcu:
            result = json.loads(stack.php(service, [setup, "muc-apcu"], php_options=("-d", "apc.enable_cli=1")))
            print(f"{service}: MUC application caches on APCu (changed: {result['changed']})")
        # Each MUC configuration has its own stores: purge them all (APCu lives in Apache, so a service
        # with its caches there is restarted instead).
        if apcu:
            stack.container(service).restart(timeout=30)
            wait_serving(base)
        else:
            stack.php(service, ["admin/cli/purge_caches.php"])
    for _name, service, _base in configs:
        stack.cleanup(service)
    stack.cleanup("web")
    return ids, password


def login(base, username, password):
    """Log in through the login form; returns the MoodleSession cookie of a session that reaches /my/."""
    session = requests.Session()
    page = session.get(base + "/login/index.php", timeout=120)
    token = LOGINTOKEN.search(page.text)
    if page.status_code != 200 or not token:
        raise RuntimeError(f"{base}: login page answered {page.status_code} without a login token")
    session.post(
        base + "/login/index.php",
        data={"username": username, "password": password, "logintoken": token.group(1)},
        timeout=120,
    )
    cookie = session.cookies.get("MoodleSession")
    my = session.get(base + "/my/", allow_redirects=False, timeout=120)
    if my.status_code != 200 or "login/logout.php" not in my.text:
        raise RuntimeError(f"{base}: {username} is not logged in (/my/ answered {my.status_code})")
    return f"MoodleSession={cookie}"


def login_retrying(base, username, password, failures):
    """login(), tried three times: each failure is printed and counted (a configuration that fails logins
    is a finding in itself, reported with its figures)."""
    for attempt in (1, 2, 3):
        try:
            return login(base, username, password)
        except (RuntimeError, requests.RequestException) as exc:
            failures.append(str(exc))
            print(f"  login attempt {attempt} failed: {exc}", flush=True)
            if attempt == 3:
                raise
            time.sleep(5)
    raise AssertionError("unreachable")


def login_all(configs, users, password, outdir):
    """One session per student per configuration, written (0600) to outdir/sessions-<config>.txt."""
    files = {}
    for name, _service, base in configs:
        started = time.monotonic()
        failures = []
        with ThreadPoolExecutor(max_workers=8) as pool:
            cookies = list(pool.map(lambda user, b=base, f=failures: login_retrying(b, user, password, f), users))
        if failures:
            print(f"{name}: {len(failures)} failed login attempts before every student was logged in")
        if len(set(cookies)) != len(users):
            sys.exit(f"{name}: {len(set(cookies))} distinct sessions for {len(users)} students")
        path = os.path.join(outdir, f"sessions-{name}.txt")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(cookies) + "\n")
        files[name] = path
        print(f"{name}: {len(cookies)} students logged in through {base}/login/ in {time.monotonic() - started:.0f} s")
    return files


def wrk(url, connections, duration, threads, cookie_file=None):
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "30s"]
    command += ["-s", os.path.join(HERE, "wrk_report.lua"), url]
    if cookie_file:
        command += ["--", cookie_file, str(threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    match = WRK_LINE.search(out)
    if not match:
        sys.exit("unexpected wrk output:\n" + out)
    rps, p50, p95, p99, requests_done, errors, non200 = match.groups()
    return {
        "rps": float(rps),
        "p50": float(p50),
        "p95": float(p95),
        "p99": float(p99),
        "requests": int(requests_done),
        "errors": int(errors),
        "non200": int(non200),
    }


def chart(results, configs, pages, path, title):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(pages), figsize=(4.2 * len(pages), 4.8), sharey=False)
    axes = axes if len(pages) > 1 else [axes]
    width = 0.27
    for ax, page in zip(axes, pages, strict=True):
        xs = range(len(configs))
        for offset, (key, colour) in enumerate((("p50", "#4c72b0"), ("p95", "#dd8452"), ("p99", "#c44e52"))):
            values = [results[(page, name)][key] for name in configs]
            ax.bar([x + (offset - 1) * width for x in xs], values, width, label=key, color=colour)
        for x, name in zip(xs, configs, strict=True):
            r = results[(page, name)]
            ax.annotate(f"{r['rps']:.1f}/s", (x, r["p99"]), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(list(xs), configs, rotation=30, ha="right", fontsize=8)
        ax.set_title(page, fontsize=10)
        ax.set_ylabel("latency ms (label: req/s)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def median_round(rounds):
    """The round with the median throughput (its latencies belong to the same measurement)."""
    ordered = sorted(rounds, key=lambda r: r["rps"])
    return ordered[(len(ordered) - 1) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", default="moodleacc", help="Compose project of the stack")
    parser.add_argument("--configs", default=",".join(c[0] for c in CONFIGS if c[0] != "experiment"),
                        help="comma-separated, first is the reference (experiment: only with BENCH_EXPERIMENT)")
    parser.add_argument("--pages", default=",".join(p[0] for p in PAGES))
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of 4-connection warm-up before each")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds; the median-throughput round is shown")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench-stack"))
    args = parser.parse_args()
    # The session files are removed on the way out, also when the run is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    known = {c[0]: c for c in CONFIGS}
    wanted = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in known]
    pages_known = {p[0]: p for p in PAGES}
    wanted_pages = [p.strip() for p in args.pages.split(",") if p.strip()]
    unknown += [p for p in wanted_pages if p not in pages_known]
    if unknown or not wanted or not wanted_pages:
        sys.exit(f"unknown or empty --configs/--pages {unknown}; known: {list(known)} and {list(pages_known)}")
    if min(args.connections, args.duration, args.threads, args.rounds) < 1 or args.warmup < 0:
        sys.exit("--connections, --duration, --threads and --rounds must be at least 1, --warmup at least 0")
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (make bench-stack installs it with apt)")
    configs = [known[c] for c in wanted]
    pages = [pages_known[p] for p in wanted_pages]
    os.makedirs(args.out, exist_ok=True)
    stack = Stack(args.project)
    for _name, _service, base in configs:
        wait_serving(base)
    ids, password = prepare_site(stack, configs)
    session_files = {}
    try:
        if any(p[2] for p in pages):
            session_files = login_all(configs, ids["users"], password, args.out)
        rounds = {}
        load_start = loadavg()
        for round_number in range(1, args.rounds + 1):
            # The order of the configurations rotates from round to round, so none is always measured first
            # (right after the previous page's last, possibly saturated, measurement).
            shift = (round_number - 1) % len(configs)
            order = configs[shift:] + configs[:shift]
            for page, path, logged_in in pages:
                for name, service, base in order:
                    url = base + path.format(**ids)
                    cookies = session_files.get(name) if logged_in else None
                    if args.warmup:
                        wrk(url, 4, args.warmup, 1, cookies)
                        stack.drain(service)
                    load = loadavg()
                    print(
                        f"round {round_number}: {name} {page}: {args.connections} connections, {args.duration}s "
                        f"(load {load[0]:.2f}) ...",
                        flush=True,
                    )
                    cpu_before = stack.cpu_seconds()
                    result = wrk(url, args.connections, args.duration, args.threads, cookies)
                    cpu_after = stack.cpu_seconds()
                    # CPU milliseconds per completed request, by service, over the measurement (requests wrk
                    # gave up on are paid for but not counted): the ceiling on this machine is
                    # cpus * 1000 / the total, whatever the configuration of Apache/PHP.
                    done = max(result["requests"], 1)
                    result["cpu_ms"] = {
                        svc: round((cpu_after[svc] - cpu_before.get(svc, 0.0)) * 1000 / done, 2)
                        for svc in cpu_after
                        if cpu_after[svc] - cpu_before.get(svc, 0.0) > 0.001
                    }
                    result["load1"] = load[0]
                    result["drain_s"] = round(stack.drain(service), 1)
                    rounds.setdefault((page, name), []).append(result)
        load_end = loadavg()
    finally:
        for path in session_files.values():
            os.unlink(path)
    results = {key: median_round(value) for key, value in rounds.items()}
    names = [c[0] for c in configs]
    page_names = [p[0] for p in pages]
    cpus = os.cpu_count()
    print()
    print(
        f"load average (1/5/15 min) at start {' '.join(f'{x:.2f}' for x in load_start)}, at end "
        f"{' '.join(f'{x:.2f}' for x in load_end)} on {cpus} CPUs (other work on this machine skews absolute figures; "
        "the ratios come from one alternating run)"
    )
    header = f"{'page':<17} {'config':<13} {'req/s':>8} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"
    header += f" {'errors':>7} {'non-200':>8} {'load1':>6} {'drain s':>7}"
    print(header)
    for page in page_names:
        for name in names:
            r = results[(page, name)]
            print(
                f"{page:<17} {name:<13} {r['rps']:>8.1f} {r['p50']:>9.0f} {r['p95']:>9.0f} {r['p99']:>9.0f} "
                f"{r['errors']:>7d} {r['non200']:>8d} {r['load1']:>6.2f} {r['drain_s']:>7.0f}"
            )
    print()
    print("CPU per completed request (ms, by service, median round) and the CPU ceiling it implies on this machine")
    print("(total = the measured web service + db + redis; other services - cron, idle web services - in brackets)")
    service_of = {name: service for name, service, _base in configs}
    for page in page_names:
        for name in names:
            cpu_ms = results[(page, name)].get("cpu_ms", {})
            serving = {service_of[name], "db", "redis"}
            total = sum(ms for svc, ms in cpu_ms.items() if svc in serving)
            split = ", ".join(f"{svc} {ms:.1f}" if svc in serving else f"[{svc} {ms:.1f}]"
                              for svc, ms in sorted(cpu_ms.items(), key=lambda kv: -kv[1]))
            ceiling = f"{cpus * 1000 / total:.0f} req/s" if total > 0 else "-"
            print(f"{page:<17} {name:<13} total {total:>7.1f} ms -> at most {ceiling:>10}  ({split})")
    print()
    reference = names[0]
    for page in page_names:
        ref = results[(page, reference)]
        ratios = []
        for name in names[1:]:
            other = results[(page, name)]
            ratio = f"{ref['rps'] / other['rps']:.2f}x" if other["rps"] > 0 else "inf"
            ratios.append(f"{reference}/{name} {ratio}")
        print(f"{page}: " + ", ".join(ratios))
    if reference == "tuned":
        print()
        for page in page_names:
            ref = results[(page, "tuned")]
            checks = []
            if page in GOALS:
                rps_goal, p95_goal = GOALS[page]
                checks.append(f"req/s {ref['rps']:.1f} {'>=' if ref['rps'] >= rps_goal else '<'} {rps_goal:.0f}")
                if p95_goal:
                    checks.append(f"p95 {ref['p95']:.0f} ms {'<' if ref['p95'] < p95_goal else '>='} {p95_goal:.0f} ms")
            if "opcache-only" in names and results[(page, "opcache-only")]["rps"] > 0:
                over = ref["rps"] / results[(page, "opcache-only")]["rps"]
                verdict = ">=" if over >= GOAL_OVER_BASELINE else "<"
                checks.append(f"tuned/opcache-only {over:.2f}x {verdict} {GOAL_OVER_BASELINE}x")
            bad = ref["errors"] + ref["non200"]
            checks.append(f"{bad} errors/non-200")
            print(f"issue 17 goal, {page}: " + "; ".join(checks))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    with open(os.path.join(args.out, "results.json"), "w") as handle:
        json.dump(
            {
                "time": stamp,
                "cpus": cpus,
                "load_start": load_start,
                "load_end": load_end,
                "connections": args.connections,
                "duration": args.duration,
                "rounds": {f"{page} | {name}": value for (page, name), value in rounds.items()},
            },
            handle,
            indent=1,
        )
    png = os.path.join(args.out, "latency.png")
    chart(
        results,
        names,
        page_names,
        png,
        f"make bench-stack {stamp}: {args.connections} connections, {args.duration}s each, {cpus} CPUs, "
        f"load {load_start[0]:.1f} -> {load_end[0]:.1f}",
    )
    print(f"\nwrote {png} and {os.path.join(args.out, 'results.json')}")


if __name__ == "__main__":
    main()
