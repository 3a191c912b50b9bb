"""What the stand-in stack suites share (tests/day2 on MariaDB, tests/pg on PostgreSQL): running tools,
the playbooks users run, the backup engine of this checkout, moodledata hashes and seed files.

The site under test runs the Moodle STAND-IN (tests/fixtures/moodle-standin), not Moodle.  Each suite's
conftest binds these to its own Compose project, inventory and containers.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
# The engine of this checkout, run by its name with the host's Python (standard library only), as
# the moodle-backup launcher runs it.
ENGINE = ["/usr/bin/python3", "-s", "-m", "ansible_collections.moodle.platform.plugins.module_utils._backup.cli"]
ENGINE_ENV = {**os.environ, "PYTHONPATH": str(ROOT / "collections")}
STANDIN_TREE = ROOT / "build" / "moodle-standin"


def run(argv, check=True, env=None, timeout=1800, input_bytes=None):
    proc = subprocess.run(argv, capture_output=True, env=env, timeout=timeout, input=input_bytes, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv[:4]} failed ({proc.returncode}):\n{proc.stdout.decode()[-3000:]}\n"
                             f"{proc.stderr.decode()[-3000:]}")
    return proc


def playbook(inventories, name, *extra, check=True, env_extra=None, timeout=1800):
    """ansible-playbook playbooks/<name> -i each of ``inventories`` -e each of ``extra`` (str or dict)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="false",
               PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env.update(env_extra or {})
    args = [ANSIBLE_PLAYBOOK, str(ROOT / "playbooks" / name)]
    for inventory in inventories:
        args += ["-i", str(inventory)]
    for item in extra:
        args += ["-e", item if isinstance(item, str) else json.dumps(item)]
    proc = subprocess.run(args, capture_output=True, cwd=ROOT, env=env, timeout=timeout, check=False)
    out = proc.stdout.decode() + proc.stderr.decode()
    print(f"--- ansible-playbook {name} {extra} -> {proc.returncode}\n{out[-4000:]}")
    if check and proc.returncode != 0:
        raise AssertionError(f"playbook {name} failed:\n{out[-6000:]}")
    return proc.returncode, out


def deploy_standin(inventories):
    """The stand-in site, deployed by playbooks/compose.yml from the materialized stand-in tree."""
    playbook(inventories, "compose.yml", {"moodle_image_source_type": "local",
                                          "moodle_image_source_path": str(STANDIN_TREE)}, timeout=3600)


def engine(config, *args, check=True):
    proc = run([*ENGINE, "--config", str(config), *args], check=False, env=ENGINE_ENV)
    data = json.loads(proc.stdout.decode() or "null")
    if check and proc.returncode != 0:
        raise AssertionError(f"engine {args} failed: {proc.stdout.decode()} {proc.stderr.decode()[-2000:]}")
    return data


def moodledata_hashes(web):
    """{path: sha256} of the dataroot, without what Moodle rebuilds (and the maintenance marker)."""
    script = ("cd /var/www/moodledata && find . -type f ! -path './cache/*' ! -path './localcache/*' "
              "! -path './temp/*' ! -path './sessions/*' ! -path './trashdir/*' ! -path './lock/*' "
              "! -name climaintenance.html -print0 | sort -z | xargs -0 -r sha256sum")
    out = run(["docker", "exec", web, "sh", "-c", script]).stdout.decode()
    return {line[66:]: line[:64] for line in out.splitlines()}


def seed_moodledata(web):
    """40 content-addressed files in filedir, and rebuildable caches the backup must leave out; then
    maintenance off (the restore turns it off, which records maintenance_enabled=0: start from that state)."""
    script = ("set -e; cd /var/www/moodledata; for i in $(seq 1 40); do "
              "head -c $((i * 997)) /dev/urandom > /tmp/f; h=$(sha1sum /tmp/f | cut -c1-40); "
              "d=filedir/$(echo $h | cut -c1-2)/$(echo $h | cut -c3-4); mkdir -p $d; mv /tmp/f $d/$h; done; "
              "mkdir -p cache/junk localcache temp sessions && echo rebuilt > cache/junk/x && echo s > sessions/s1; "
              "chown -R www-data:www-data /var/www/moodledata")
    run(["docker", "exec", web, "sh", "-c", script])
    run(["docker", "exec", "--user", "www-data", web, "php", "/var/www/moodle/admin/cli/maintenance.php", "--disable"])


def container_running(name):
    proc = run(["docker", "inspect", "--format", "{{.State.Running}} {{.State.StartedAt}} {{.Config.Image}}", name],
               check=False)
    if proc.returncode != 0:
        return None
    running, started, image = proc.stdout.decode().split()
    return {"running": running == "true", "started": started, "image": image}


def http_status(url):
    proc = run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url], check=False)
    return proc.stdout.decode()


def destroy_project(project):
    """docker compose down -v: containers, networks and volumes of the project - after the containers the roles
    run beside it (the backup scheduler container, labelled with the project): one left running by a failed
    test holds the moodledata volume, which `down -v` then cannot remove, and the next deploy finds the old
    site's moodledata (the installer rightly refuses an empty database next to it)."""
    beside = run(["docker", "ps", "-aq", "--filter", f"label=dev.moodle.platform.project={project}"], check=False)
    ids = beside.stdout.decode().split()
    if ids:
        run(["docker", "rm", "-f", *ids], check=False, timeout=120)
    run(["docker", "compose", "-p", project, "down", "-v", "--remove-orphans"], check=False, timeout=300)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def login(base_url, password, username="admin"):
    """Log in through the site's login form; (status of the POST, page of /my/ with the session)."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)

    def fetch(url, data=None):
        try:
            with opener.open(url, data=data, timeout=30) as resp:
                return resp.status, resp.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    page = fetch(base_url + "/login/index.php")[1]
    token = re.search(r'name="logintoken" value="([0-9a-f]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": password, "logintoken": token}).encode()
    status = fetch(base_url + "/login/index.php", form)[0]
    return status, fetch(base_url + "/my/")[1]


def fresh_stack(project, inventories, state_paths, reuse=False, keep=False):
    """Generator for a session fixture: the stand-in site of ``project`` deployed fresh (its restic
    repository and engine state in ``state_paths`` removed first: the tests reason about what the repository
    holds), removed with its volumes afterwards.  ``reuse`` keeps a running stack, ``keep`` leaves it."""
    web = container_running(f"{project}-web-1")
    if not (reuse and web and web["running"]):
        destroy_project(project)
        for path in state_paths:
            shutil.rmtree(path, ignore_errors=True)
        deploy_standin(inventories)
    assert container_running(f"{project}-web-1")["running"]
    yield
    if not keep:
        destroy_project(project)


def destroy_everything(project):
    """The whole stack gone, volumes included (a new, empty host as far as the site is concerned)."""
    destroy_project(project)
    volumes = run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={project}"])
    assert volumes.stdout.decode().split() == [], "the stack's volumes must be gone before the restore"
    assert container_running(f"{project}-web-1") is None
