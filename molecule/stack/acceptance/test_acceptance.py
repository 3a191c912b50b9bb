"""Real Moodle 4.5 deployed by playbooks/compose.yml: install, login, cron, checks, the local cache topology, Redis sessions."""

import datetime
import http.cookiejar
import re
import time
import urllib.error
import urllib.parse
import urllib.request

from stack_helpers import BASE_URL, exec_out, wait_for

MOODLE = "/var/www/moodle"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def php(container, *args):
    return exec_out(container("web"), ["php", *list(args)], user="www-data")


def test_install_completed(container):
    rc, out = php(container, MOODLE + "/admin/cli/cfg.php", "--name=release")
    assert rc == 0 and out.startswith("4.5"), out
    rc, out = php(container, MOODLE + "/admin/cli/upgrade.php", "--is-pending")
    assert rc == 0, out  # 2 would mean an upgrade is pending


def test_login_page_answers_200():
    with urllib.request.urlopen(BASE_URL + "/login/index.php", timeout=30) as response:  # noqa: S310
        assert response.status == 200
        assert "logintoken" in response.read().decode()


def test_admin_login_succeeds(secrets):
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
    with opener.open(BASE_URL + "/login/index.php", timeout=30) as response:
        token = re.search(r'name="logintoken" value="([^"]+)"', response.read().decode()).group(1)
    data = urllib.parse.urlencode(
        {"username": "admin", "password": secrets["moodle_admin_password"], "logintoken": token}
    ).encode()
    try:
        opener.open(BASE_URL + "/login/index.php", data=data, timeout=30)
        raise AssertionError("a successful login redirects")
    except urllib.error.HTTPError as err:
        assert err.code == 303, err.code
        location = err.headers["Location"]
    # Moodle answers a good login with a redirect to ?testsession=<userid> (a bad one re-renders the form).
    assert "testsession=" in location, location
    # The session then opens the dashboard instead of sending us back to the login page.
    follow = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with follow.open(location, timeout=30) as response:
        final_url = response.geturl()
        body = response.read().decode()
    assert "/login/" not in final_url, final_url
    assert "login/logout.php" in body


def test_cron_ran_through_the_scheduler(container):
    def ran_recently():
        rc, out = php(container, MOODLE + "/admin/cli/cfg.php", "--component=tool_task", "--name=lastcronstart")
        return rc == 0 and time.time() - int(out.strip()) < 180

    assert wait_for(ran_recently, timeout=240, interval=10)
    rc, out = php(container, MOODLE + "/admin/cli/scheduled_task.php", "--list")
    assert rc == 0, out
    # "Last run" column, e.g. "Tuesday, 24 November 2026, 4:27 PM" (site timezone = UTC here).
    stamps = re.findall(r"\w+day, (\d{1,2} \w+ \d{4}, \d{1,2}:\d{2} [AP]M)", out)
    last_runs = [datetime.datetime.strptime(s, "%d %B %Y, %I:%M %p").replace(tzinfo=datetime.UTC) for s in stamps]
    now = datetime.datetime.now(datetime.UTC)
    assert any(abs((now - t).total_seconds()) < 600 for t in last_runs), out[:2000]


def test_checks_report_no_critical(container):
    rc, out = php(container, MOODLE + "/admin/cli/checks.php")
    assert "CRITICAL" not in out.upper().replace("NON-CRITICAL", ""), out
    assert rc in (0, 1), out  # 2 = critical/error


def test_application_cache_store_is_the_local_file_store(container):
    """Cache topology local (one web host): Moodle's default file store, not Redis (docs/compose.md)."""
    code = (
        f"define('CLI_SCRIPT', true); require('{MOODLE}/config.php');"
        "$f = cache_config_writer::instance(); $stores = $f->get_all_stores();"
        "foreach ($f->get_mode_mappings() as $m) {"
        " if ((int) $m['mode'] === 1) { echo $stores[$m['store']]['plugin'], PHP_EOL; } }"
    )
    rc, out = exec_out(container("web"), ["php", "-r", code], user="www-data")
    assert rc == 0, out
    assert out.strip().splitlines()[0] == "file", out


def test_sessions_are_in_redis(container):
    rc, out = php(
        container, "-r", f"define('CLI_SCRIPT', true); require('{MOODLE}/config.php'); echo $CFG->session_handler_class;"
    )
    assert rc == 0 and out.strip().endswith("\\core\\session\\redis"), out
