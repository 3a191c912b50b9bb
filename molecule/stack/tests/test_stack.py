"""The Compose stack with the Moodle stand-in: web, login + Redis sessions, cron, isolation, secrets."""

import http.cookiejar
import json
import os
import re
import signal
import urllib.error
import urllib.parse
import urllib.request

from stack_helpers import BASE_URL, PROJECT, PROJECT_DIR, SECRET_NAMES, db_query, exec_out, redis_cli, wait_for


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_front_page_is_served_on_the_published_port():
    with urllib.request.urlopen(BASE_URL + "/", timeout=10) as response:  # noqa: S310
        body = response.read().decode()
        assert response.status == 200
    assert "Moodle stand-in CI" in body  # the site name given to the install


def test_web_port_is_bound_to_loopback_only(container):
    bindings = container("web").attrs["NetworkSettings"]["Ports"]["80/tcp"]
    assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)


def _login(password):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    with opener.open(BASE_URL + "/login/index.php", timeout=10) as response:
        token = re.search(r'name="logintoken" value="([^"]+)"', response.read().decode()).group(1)
    data = urllib.parse.urlencode({"username": "admin", "password": password, "logintoken": token}).encode()
    try:
        with opener.open(BASE_URL + "/login/index.php", data=data, timeout=10) as response:
            return response.status, response.headers.get("Location"), jar
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Location"), jar


def test_admin_login_works_and_the_session_lives_in_redis(secrets, container):
    status, location, jar = _login(secrets["moodle_admin_password"])
    assert status == 303 and location == "/my/"
    session_id = next(c.value for c in jar if c.name == "MoodleSession")
    rc, keys = redis_cli(container("redis"), "--scan", "--pattern", "mdl_sess_*")
    assert rc == 0
    assert "mdl_sess_" + session_id in keys.split()
    # ... and not in files in the dataroot.
    # As www-data: root in the container has no capability (no DAC_OVERRIDE) to list 33's 0770 dataroot.
    rc, out = exec_out(container("web"), ["sh", "-c", "ls -A /var/www/moodledata >/dev/null && "
                                                   "{ ls /var/www/moodledata/sessions 2>/dev/null | wc -l; }"], user="www-data")
    assert rc == 0 and out.strip() == "0", out


def test_wrong_password_is_refused(secrets):
    status, location, _ = _login(secrets["moodle_admin_password"] + "x")
    assert status == 200 and location is None


MUC_SCRIPT = "/usr/local/lib/moodle-platform/configure_muc.php"


def _muc(container, *args):
    rc, out = exec_out(container("web"), ["php", MUC_SCRIPT, *args], user="www-data")
    assert rc == 0, out
    return json.loads(out.strip().splitlines()[-1])


def _muc_config(container):
    """The site's MUC configuration as Moodle's cache_config_writer reads it (muc/config.php in the dataroot)."""
    script = ("define('CLI_SCRIPT', true); require '/var/www/moodle/config.php'; $w = cache_config_writer::instance(); "
              "echo json_encode(['stores' => $w->get_all_stores(), 'modemappings' => $w->get_mode_mappings()]);")
    rc, out = exec_out(container("web"), ["php", "-r", script], user="www-data")
    assert rc == 0, out
    config = json.loads(out.strip().splitlines()[-1])
    rc, listing = exec_out(container("web"), ["ls", "/var/www/moodledata/muc/config.php"], user="www-data")
    assert rc == 0, listing  # written on first use, as Moodle does
    return config


def _application_stores(config):
    return [m["store"] for m in config["modemappings"] if int(m["mode"]) == 1]


def _front_page_name():
    with urllib.request.urlopen(BASE_URL + "/", timeout=10) as response:  # noqa: S310
        return re.search(r"<title>(.*?)</title>", response.read().decode()).group(1)


def test_application_cache_is_local_on_one_host(container):
    """Cache topology `local` (one web host, the default without an external Redis): the MUC application
    caches in Moodle's default file store in moodledata (web and cron share it), none in Redis."""
    _front_page_name()
    config = _muc_config(container)
    assert _application_stores(config) == ["default_application"], config["modemappings"]
    assert all(store["plugin"] != "redis" for store in config["stores"].values()), config["stores"].keys()
    rc, keys = redis_cli(container("redis"), "--scan", "--pattern", "mdl_muc_*")
    assert rc == 0 and keys.strip() == "", keys
    rc, out = exec_out(container("web"), ["sh", "-c", "ls /var/www/moodledata/cache/standin_application | wc -l"],
                       user="www-data")
    assert rc == 0 and int(out.strip()) >= 1, out


def _application_cache_keys_in_redis(container):
    rc, keys = redis_cli(container("redis"), "--scan", "--pattern", "mdl_muc_standin_application_*")
    assert rc == 0, keys
    return keys.split()


def test_cache_topology_moves_between_shared_and_local(container):
    """configure_muc.php: shared maps the application mode to Redis (served from there), local maps it back,
    deletes the Redis store (its configuration holds the password) and purges what the caches held.

    The image keeps the MUC configuration out of OPcache (opcache.blacklist_filename): web serves through the
    new mapping on the first request after each move, not after opcache.revalidate_freq (60 s), so the role
    does not wait (configure.yml). Two moves checked on their first request: a stale OPcache passes this by
    chance only if both moves fall just before its revalidation."""
    shared = ["--name=redis", "--server=redis:6379", "--prefix=mdl_muc_",
              "--password-file=/run/moodle-secrets/redis_password", "--password-file=/run/secrets/redis_password"]
    name = _front_page_name()  # web has compiled everything it includes (the file-store mapping)
    try:
        first = _muc(container, *shared)
        assert first["changed"] is True and first["opcache_blacklisted"] is True, first
        _front_page_name()
        assert "mdl_muc_standin_application_sitefullname" in _application_cache_keys_in_redis(container)
        assert _muc(container, *shared)["changed"] is False
        assert _application_stores(_muc_config(container)) == ["redis"]
    finally:
        moved = _muc(container, "--local", "--name=redis")
    assert moved == {"changed": True, "store": "default_application", "opcache_blacklisted": True}
    assert _muc(container, "--local", "--name=redis")["changed"] is False
    rc, out = redis_cli(container("redis"), "--scan", "--pattern", "mdl_muc_*")
    keys = out.split()
    assert rc == 0, out
    if keys:
        rc, out = redis_cli(container("redis"), "DEL", *keys)
        assert rc == 0, out
    assert _front_page_name() == name
    assert _application_cache_keys_in_redis(container) == []  # web served through the file store at once
    config = _muc_config(container)
    assert _application_stores(config) == ["default_application"] and "redis" not in config["stores"], config


def test_local_topology_leaves_an_administrators_store_alone(container):
    """A mapping this deployment did not make is refused with a message naming it, nothing changed."""
    before = _muc_config(container)
    rc, out = exec_out(container("web"), ["php", MUC_SCRIPT, "--local", "--name=someoneelse"], user="www-data")
    assert rc == 0, out  # mapped to the default store already: nothing to undo
    script = ("define('CLI_SCRIPT', true); require '/var/www/moodle/config.php'; $w = cache_config_writer::instance(); "
              "$w->add_store_instance('adminstore', 'file', []); $w->set_mode_mappings([1 => ['adminstore']]);")
    try:
        rc, out = exec_out(container("web"), ["php", "-r", script], user="www-data")
        assert rc == 0, out
        rc, out = exec_out(container("web"), ["php", MUC_SCRIPT, "--local", "--name=redis"], user="www-data")
        assert rc == 1 and "'adminstore'" in out, out
        assert _application_stores(_muc_config(container)) == ["adminstore"]
    finally:
        restore = ("define('CLI_SCRIPT', true); require '/var/www/moodle/config.php'; $w = cache_config_writer::instance(); "
                   "$w->set_mode_mappings([1 => ['default_application']]); $w->delete_store_instance('adminstore');")
        rc, out = exec_out(container("web"), ["php", "-r", restore], user="www-data")
        assert rc == 0, out
    after = _muc_config(container)
    assert _application_stores(after) == _application_stores(before) and after["stores"].keys() == before["stores"].keys()


def test_cron_runs_repeatedly_through_the_cron_service(container):
    def recent_runs():
        rc, out = db_query(
            container("db"), "SELECT COUNT(*) FROM mdl_standin_cron_runs WHERE timestarted > UNIX_TIMESTAMP() - 60"
        )
        assert rc == 0, out
        return int(out.strip()) >= 2

    assert wait_for(recent_runs, timeout=90)
    # The runs come from the cron container's loop, which has no Docker socket.
    mounts = [m["Source"] for m in container("cron").attrs["Mounts"]]
    assert not any("docker.sock" in source for source in mounts)


def test_db_and_redis_are_not_published_on_the_host(dockerc):
    """Only web (and the dev tools) publish ports, and only on loopback.

    (Root on the Docker host itself can still open the bridge IPs of the internal network: that is
    how Linux bridges work and is documented in docs/compose.md; nothing is published for them.)
    """
    published = {}
    for c in dockerc.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"}):
        ports = {k: v for k, v in c.attrs["NetworkSettings"]["Ports"].items() if v}
        if ports:
            published[c.labels["com.docker.compose.service"]] = ports
    assert set(published) <= {"web", "adminer", "mailpit", "proxy"}, published
    assert "web" in published
    for ports in published.values():
        for bindings in ports.values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings)


def _probe(dockerc, network, target, port, image):
    """Try a TCP connection from a throw-away container on `network`; True when it connects."""
    output = dockerc.containers.run(
        image,
        ["bash", "-c", f"timeout 3 bash -c '</dev/tcp/{target}/{port}' && echo OPEN || echo CLOSED"],
        entrypoint=[],
        network=f"{PROJECT}_{network}",
        remove=True,
    )
    return output.decode().strip().endswith("OPEN")


def test_db_and_redis_only_reachable_from_the_backend_network(dockerc, container):
    image = container("db").image.tags[0]
    backend_ip = {
        s: container(s).attrs["NetworkSettings"]["Networks"][f"{PROJECT}_backend"]["IPAddress"] for s in ("db", "redis")
    }
    # Positive control: the probe does detect an open port.
    assert _probe(dockerc, "backend", "db", 3306, image)
    assert _probe(dockerc, "backend", "redis", 6379, image)
    for service, port in (("db", 3306), ("redis", 6379)):
        assert not _probe(dockerc, "frontend", service, port, image)
        assert not _probe(dockerc, "frontend", backend_ip[service], port, image)
    assert dockerc.networks.get(f"{PROJECT}_backend").attrs["Internal"] is True
    assert set(container("db").attrs["NetworkSettings"]["Networks"]) == {f"{PROJECT}_backend"}
    assert set(container("redis").attrs["NetworkSettings"]["Networks"]) == {f"{PROJECT}_backend"}


def test_no_secret_in_docker_inspect_or_process_lists(dockerc, secrets):
    containers = dockerc.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
    assert {c.labels["com.docker.compose.service"] for c in containers} >= {"web", "cron", "db", "redis"}
    for c in containers:
        inspected = json.dumps(c.attrs)
        processes = json.dumps(c.top(ps_args="-eo pid,args") if c.status == "running" else {})
        for name, value in secrets.items():
            assert len(value) >= 16
            assert value not in inspected, f"{name} found in docker inspect of {c.name}"
            assert value not in processes, f"{name} found in the process list of {c.name}"


def test_secret_files_are_private():
    import os
    import stat

    assert stat.S_IMODE(os.stat(os.path.join(PROJECT_DIR, "secrets")).st_mode) == 0o700
    for name in SECRET_NAMES:
        info = os.stat(os.path.join(PROJECT_DIR, "secrets", name))
        # The ones web/cron read as uid 33 (no capability): root:33 0440; db_root_password root-only.
        want = (0, 0, 0o600) if name == "db_root_password" else (0, 33, 0o440)
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == want, name


def test_moodle_code_is_read_only_to_the_web_server(container):
    rc, _ = exec_out(container("web"), ["sh", "-c", "touch /var/www/moodle/index.php"], user="www-data")
    assert rc != 0
    rc, _ = exec_out(
        container("web"),
        ["sh", "-c", "touch /var/www/moodledata/.write-test && rm /var/www/moodledata/.write-test"],
        user="www-data",
    )
    assert rc == 0


def test_php_settings_of_the_image(container):
    rc, out = exec_out(
        container("web"),
        ["php", "-r", "echo ini_get('max_input_vars'), ' ', ini_get('opcache.enable') === false ? 'no' : 'yes';"],
    )
    assert rc == 0 and out.split()[0] == "5000"
    rc, out = exec_out(container("web"), ["php", "-m"])
    for module in ("sodium", "intl", "mysqli", "redis", "igbinary", "apcu", "Zend OPcache", "soap", "ldap"):
        assert module in out.splitlines()


def test_the_default_database_is_mariadb_11_8_with_the_site_collation(container):
    """Build mode's default series (service_images_mariadb_version 11.8, Debian trixie); utf8mb4_unicode_ci
    also where 11.8 would choose utf8mb4_uca1400_ai_ci for a statement that names no collation."""
    rc, out = db_query(container("db"), "SELECT VERSION(), @@collation_server, @@character_set_collations")
    assert rc == 0, out
    version, collation, collations = out.strip().split("\t")
    assert version.startswith("11.8."), version
    assert collation == "utf8mb4_unicode_ci"
    assert "utf8mb4=utf8mb4_unicode_ci" in collations, collations
    rc, out = db_query(container("db"), "SELECT default_collation_name FROM information_schema.schemata "
                                        "WHERE schema_name = 'moodle'")
    assert (rc, out.strip()) == (0, "utf8mb4_unicode_ci")


def test_all_services_are_healthy(dockerc):
    containers = dockerc.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
    for c in containers:
        health = c.attrs["State"].get("Health")
        if health:
            assert health["Status"] == "healthy", c.name
        assert c.attrs["HostConfig"]["LogConfig"]["Config"].get("max-size") == "10m"


MARKER = "/var/www/moodledata/.moodle-platform-installed"
INSTALL = ("MOODLE_DB_NAME=moodle_race php /usr/local/lib/moodle-platform/install.php "
           "--adminuser=admin --adminemail=a@example.com --fullname=Race --shortname=race")


def test_concurrent_first_installs_install_once(container):
    """An empty database next to this site's moodledata is refused (what a restore's recreated database
    looks like); with a fresh moodledata (the marker moved aside), two simultaneous installs: exactly one
    installs, the other waits for the lock and finds the site installed."""
    db, web = container("db"), container("web")
    rc, out = db_query(
        db,
        "DROP DATABASE IF EXISTS moodle_race; CREATE DATABASE moodle_race; GRANT ALL ON moodle_race.* TO 'moodle'@'%';",
        database="mysql",
    )
    assert rc == 0, out
    try:
        rc, out = exec_out(web, ["sh", "-c", f"{INSTALL} 2>&1; echo rc=$?"], user="www-data")
        assert "not installing over it" in out and out.rstrip().endswith("rc=1"), out
        rc, out = db_query(db, "SHOW TABLES", database="moodle_race")
        assert out.strip() == "", out
        rc, out = exec_out(web, ["mv", MARKER, f"{MARKER}.site"], user="www-data")
        assert rc == 0, out
        script = (
            f"for i in 1 2; do {INSTALL} > /tmp/race.$i 2>&1 & done; "
            "wait; cat /tmp/race.1 /tmp/race.2"
        )
        rc, out = exec_out(web, ["sh", "-c", script], user="www-data")
        assert out.count("moodle-platform: installed") == 1, out
        assert out.count("moodle-platform: already installed") == 1, out
        rc, out = db_query(db, "SELECT COUNT(*) FROM mdl_user", database="moodle_race")
        assert out.strip() == "1"
    finally:
        exec_out(web, ["sh", "-c", f'[ ! -e "{MARKER}.site" ] || mv -f "{MARKER}.site" "{MARKER}"'], user="www-data")
        db_query(db, "DROP DATABASE IF EXISTS moodle_race", database="mysql")


def _php_runtime(web):
    """(php-fpm master pids, worker count) and the uids of Apache's and PHP-FPM's processes, from `docker top`."""
    top = web.top(ps_args="-eo pid,uid,args")
    rows = [dict(zip(top["Titles"], proc, strict=True)) for proc in top["Processes"]]
    masters = [r for r in rows if r["COMMAND"].startswith("php-fpm: master")]
    workers = [r for r in rows if r["COMMAND"].startswith("php-fpm: pool moodle")]
    apache = [r for r in rows if r["COMMAND"].startswith("/usr/sbin/apache2")]
    return masters, workers, apache


def test_web_serves_php_through_a_php_fpm_pool_behind_the_event_mpm(container):
    """compose_stack_php_runtime fpm (build mode's default): a fixed pool of 4 workers per CPU of web's limit
    (2.0 -> 8), all as uid 33 like Apache, and Apache runs the event MPM without mod_php."""
    web = container("web")
    env = dict(item.split("=", 1) for item in web.attrs["Config"]["Env"])
    assert (env.get("MOODLE_PHP_SAPI"), env.get("MOODLE_FPM_CHILDREN")) == ("fpm", "8")
    masters, workers, apache = _php_runtime(web)
    assert len(masters) == 1 and len(workers) == 8, (masters, workers)
    assert apache and {r["UID"] for r in masters + workers + apache} == {"33"}, (masters, workers, apache)
    assert all("-DMOODLE_FPM" in r["COMMAND"] for r in apache), apache
    rc, out = exec_out(web, ["sh", "-c", ". /etc/apache2/envvars && apache2 -DMOODLE_FPM -M"], user="www-data")
    modules = {line.split()[0] for line in out.splitlines() if line.strip().endswith("(shared)") or "(static)" in line}
    assert rc == 0 and {"mpm_event_module", "proxy_fcgi_module"} <= modules, out
    assert "php_module" not in modules and "mpm_prefork_module" not in modules, out
    # A request Moodle answers went through the pool: the login page sets Moodle's session cookie.
    with urllib.request.urlopen(f"{BASE_URL}/login/index.php", timeout=30) as resp:  # noqa: S310 - http to loopback
        assert resp.status == 200 and "MoodleSession" in (resp.headers.get("Set-Cookie") or "")


def test_a_dead_php_fpm_pool_restarts_the_web_container(container):
    """The entry point supervises both processes: PHP-FPM's master killed (SIGKILL, as a crash) stops Apache
    too and the container exits, so the restart policy starts both again - instead of Apache answering 503."""
    web = container("web")
    before = web.attrs["RestartCount"]
    masters, _, _ = _php_runtime(web)
    assert len(masters) == 1, masters
    os.kill(int(masters[0]["PID"]), signal.SIGKILL)

    def restarted_and_serving():
        web.reload()
        if web.attrs["RestartCount"] <= before or web.status != "running":
            return False
        try:
            with urllib.request.urlopen(f"{BASE_URL}/login/index.php", timeout=10) as resp:  # noqa: S310 - http to loopback
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    assert wait_for(restarted_and_serving, 120), (web.status, web.attrs["RestartCount"], web.logs(tail=20))
    assert "PHP-FPM exited; stopping the container so that it is restarted" in web.logs(tail=200).decode()
    masters, workers, _ = _php_runtime(web)
    assert len(masters) == 1 and len(workers) == 8
    assert wait_for(lambda: web.reload() or web.attrs["State"]["Health"]["Status"] == "healthy", 150), \
        web.attrs["State"]["Health"]
