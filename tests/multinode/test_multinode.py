"""One site on two web nodes (mn-a, mn-b) behind a load balancer: what they share, what they must not do twice.

Moodle STAND-IN (test fixture, not Moodle).  Figures are printed: requests failed when a node dies, time of
the rolling upgrade.  Both nodes run on one Docker engine (see conftest.py for what that does not prove).
"""

from __future__ import annotations

import http.cookiejar
import itertools
import json
import os
import re
import signal
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter

from conftest import FIGURES, LB, NODES, PROJECTS, ROOT, STATE_DIR, inspect, playbook, project_services, run, sql

CRON_TICK = 5  # the stand-in's cron records a run every 5 s while cron.php --keep-alive runs


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url, opener=None, data=None, timeout=10):
    """(status, body); connection errors -> (0, reason)."""
    opener = opener or urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, data=data, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc)


def test_two_nodes_share_external_services_and_keep_a_local_cache(site):
    assert project_services("mn-a") == ["cron", "web"]  # no db/redis containers; cron on one node only
    assert project_services("mn-b") == ["web"]
    for project in PROJECTS:
        mounts = json.loads(inspect(f"{project}-web-1", "{{json .Mounts}}"))
        by_target = {m["Destination"]: m for m in mounts}
        assert by_target["/var/www/moodledata"]["Type"] == "bind"
        assert by_target["/var/www/moodledata"]["Source"] == str(STATE_DIR / "moodledata")
        assert by_target["/var/www/moodlelocalcache"]["Name"] == f"{project}_localcache"
        env = inspect(f"{project}-web-1", "{{json .Config.Env}}")
        assert "MOODLE_DB_HOST=mn-shared-db" in env and "MOODLE_REDIS_HOST=mn-shared-redis" in env
        assert site["compose_stack_db_password"] not in env and site["compose_stack_redis_password"] not in env
    # one installation in the shared database; both nodes serve it
    assert sql("SELECT COUNT(*) FROM mdl_user WHERE username = 'admin'")[0][0] == "1"
    for url in (*NODES.values(), LB):
        assert fetch(url + "/login/index.php")[0] == 200


def test_session_created_on_node_a_is_valid_on_node_b(site):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    status, page = fetch(NODES["mn-a"] + "/login/index.php", opener)
    assert status == 200
    token = re.search(r'name="logintoken" value="([0-9a-f]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": "admin", "password": site["compose_stack_moodle_admin_password"],
                                   "logintoken": token}).encode()
    status, _ = fetch(NODES["mn-a"] + "/login/index.php", opener, data=form)
    assert status == 303, "the login on node A failed"
    assert "logged in as admin" in fetch(NODES["mn-a"] + "/my/", opener)[1]
    # the same cookie on node B: the session lives in the shared Redis
    status, body = fetch(NODES["mn-b"] + "/my/", opener)
    assert status == 200 and "logged in as admin" in body
    # and without the cookie node B sends to the login page (the check can fail)
    assert fetch(NODES["mn-b"] + "/my/")[0] == 303


def _title(url):
    return re.search(r"<title>(.*)</title>", fetch(url + "/")[1]).group(1)


def test_cache_purge_on_node_a_is_seen_on_node_b(site):
    name = "Multi-node cache check " + str(time.time_ns())
    before = _title(NODES["mn-b"])  # the site name is served through the MUC application store (Redis)
    sql(f"INSERT INTO mdl_config (name, value) VALUES ('standin_fullname', '{name}') "  # noqa: S608 - test data
        "ON DUPLICATE KEY UPDATE value = VALUES(value)")
    assert _title(NODES["mn-b"]) == before, "node B did not serve the cached name"
    run(["docker", "exec", "-u", "www-data", "mn-a-web-1", "php", "/var/www/moodle/admin/cli/purge_caches.php"])
    assert _title(NODES["mn-b"]) == name
    assert _title(NODES["mn-a"]) == name


def test_cron_runs_once_site_wide(site):
    started = inspect("mn-a-cron-1", "{{.State.StartedAt}}")
    assert started and inspect("mn-b-cron-1", "{{.State.StartedAt}}") is None
    # a full minute of the running cron
    now = int(sql("SELECT UNIX_TIMESTAMP()")[0][0])
    first = int(sql("SELECT COALESCE(MIN(timestarted), UNIX_TIMESTAMP()) FROM mdl_standin_cron_runs")[0][0])
    time.sleep(max(0, 62 - (now - first)))
    now = int(sql("SELECT UNIX_TIMESTAMP()")[0][0])
    starts = [int(r[0]) for r in sql(f"SELECT timestarted FROM mdl_standin_cron_runs WHERE timestarted > {now - 60} "  # noqa: S608
                                     "ORDER BY timestarted")]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    FIGURES.append(f"cron: {len(starts)} stand-in cron runs in the last 60 s site-wide (one runner ticks every "
          f"{CRON_TICK} s), smallest gap {min(gaps) if gaps else '-'} s")
    # one runner: at most one run per tick; a second runner would double the count and halve the gaps
    assert 1 <= len(starts) <= 60 // CRON_TICK + 1
    assert all(gap >= CRON_TICK - 1 for gap in gaps)


def _load(url, seconds, rate, results, stop=None):
    """Bounded load: `rate` requests per second (sequential workers) for `seconds`; appends statuses."""
    deadline = time.monotonic() + seconds

    def worker():
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            began = time.monotonic()
            results.append((time.monotonic(), fetch(url, timeout=15)[0]))
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))

    threads = [threading.Thread(target=worker) for _ in range(rate)]
    for thread in threads:
        thread.start()
    return threads


def test_site_keeps_serving_when_one_node_is_killed(site):
    results = []
    threads = _load(LB + "/login/index.php", 25, 10, results)
    time.sleep(6)
    pid = int(inspect("mn-b-web-1", "{{.State.Pid}}"))
    assert pid > 0
    os.kill(pid, signal.SIGKILL)  # the container's main process, from the host (not docker kill)
    killed_at = time.monotonic()
    for thread in threads:
        thread.join()
    statuses = Counter(status for _, status in results)
    failed = sum(n for status, n in statuses.items() if status != 200)
    FIGURES.append(f"node killed: {failed} of {len(results)} requests through the load balancer failed "
          f"(statuses {dict(statuses)}); node B restarted: {inspect('mn-b-web-1', '{{.RestartCount}}')} time(s)")
    after = [status for at, status in results if at > killed_at + 2]
    assert after and all(status == 200 for status in after[-20:]), "the site did not keep serving"
    assert failed <= len(results) * 0.02
    assert int(inspect("mn-b-web-1", "{{.RestartCount}}")) >= 1  # Docker restarted it (unless-stopped)


def test_rolling_upgrade_of_two_nodes_keeps_the_site_answering(site, tmp_path):
    out = tmp_path / "image_b.json"
    playbook(ROOT / "tests" / "day2" / "build_standin_b.yml", f"day2_image_b_out={out}", limit="node-a")
    image_b = json.loads(out.read_text())["ref"]
    results, stop = [], threading.Event()
    threads = _load(LB + "/login/index.php", 1800, 4, results, stop)
    started = time.monotonic()
    try:
        _, log = playbook(ROOT / "playbooks" / "upgrade.yml", f"upgrade_image={image_b}")
    finally:
        upgrade_seconds = time.monotonic() - started
        time.sleep(3)
        stop.set()
        for thread in threads:
            thread.join()
    statuses = Counter(status for _, status in results)
    FIGURES.append(f"rolling upgrade: {upgrade_seconds:.0f} s for 2 nodes; {len(results)} requests through the load "
          f"balancer: {dict(statuses)}")
    # the site answered throughout: pages or the maintenance page (503), nothing else
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[503] > 0, "maintenance was never seen"
    assert [s for _, s in results][-5:] == [200] * 5
    for project in PROJECTS:
        assert inspect(f"{project}-web-1", "{{.Config.Image}}") == image_b
    assert inspect("mn-a-cron-1", "{{.Config.Image}}") == image_b
    assert sql("SELECT value FROM mdl_config WHERE name = 'version'")[0][0] == "2024100706.00"
    assert sql("SELECT value FROM mdl_config WHERE name = 'cron_enabled'")[0][0] == "1"
    assert "node-b of a shared site" in log  # node B only switched its image
