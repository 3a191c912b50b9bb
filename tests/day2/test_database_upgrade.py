"""MariaDB 10.11 -> 11.8 on a stand-in site (moodle.platform.db_upgrade); the stand-in is not Moodle.

`make db-upgrade-test` runs this module alone, on a stack of its own (project dbup, deployed on MariaDB
10.11 by tests/day2/inventory-dbupgrade over the day-2 inventory), beside the day-2 suite, which runs on
11.8 (the default of build mode) from the start.  It moves the seeded site to 11.8 - once with an injected
failure (rolled back to 10.11, data equal), then for real (data equal, site answers) - and refuses the
downgrade and a plain deployment of 10.11 on the 11.8 data.
"""

from __future__ import annotations

import re
import time

import pytest

from conftest import DB, PROJECT, ROOT, WEB, WEB_PORT, container_running, http_status, playbook, run, sql, stop_cron, table_dumps

pytestmark = pytest.mark.usefixtures("seeded")
LOGIN = f"http://127.0.0.1:{WEB_PORT}/login/index.php"
COPY_VOLUME = f"{PROJECT}_db_data_before_upgrade"
TIMES = {}


def server_version():
    return sql("SELECT VERSION()")[0][0]


def volume_exists(name):
    return run(["docker", "volume", "inspect", name], check=False).returncode == 0


def test_the_stack_starts_on_mariadb_10_11_with_its_collation():
    assert server_version().startswith("10.11."), server_version()
    # the site's settings win over Debian's 50-server.cnf (which sets utf8mb4_general_ci)
    assert sql("SELECT @@character_set_server, @@collation_server") == [["utf8mb4", "utf8mb4_unicode_ci"]]


def test_upgrade_with_injected_failure_rolls_back_to_10_11():
    before_db = container_running(DB)
    before = table_dumps(normalise_cron=True)
    # The STAND-IN's login page fails on MariaDB 11.8 (its fault injection): the upgrade gets through
    # mariadb-upgrade, the table checks and the switch of the stack, and fails only at the site's answer.
    sql("INSERT INTO mdl_config (name, value) VALUES ('standin_fail_on_db_server', '11.8.')")
    with_row = table_dumps(normalise_cron=True)
    started = time.time()
    code, out = playbook("db_upgrade.yml", "service_images_mariadb_version=11.8", "db_upgrade_health_timeout=15",
                         check=False)
    out = re.sub(r"\s+", " ", out)
    TIMES["failed_upgrade_with_rollback"] = time.time() - started
    assert code != 0
    # (the YAML output doubles the quotes around the step's name)
    assert re.search(r"FAILED at step '+verify the site'+", out), out[-3000:]
    assert "HTTP 500" in out and "Rolled back in" in out
    TIMES["rollback"] = float(re.search(r"Rolled back in ([0-9.]+) s", out).group(1))
    after_db = container_running(DB)
    assert after_db["image"] == before_db["image"] and after_db["started"] != before_db["started"]
    assert server_version().startswith("10.11.")
    assert not volume_exists(COPY_VOLUME)
    stop_cron()
    assert table_dumps(normalise_cron=True) == with_row
    sql("DELETE FROM mdl_config WHERE name = 'standin_fail_on_db_server'")
    assert table_dumps(normalise_cron=True) == before
    assert http_status(LOGIN) == "200"


def test_upgrade_10_11_to_11_8_keeps_the_data():
    stop_cron()
    before = table_dumps(normalise_cron=True)
    before_image = container_running(DB)["image"]
    started = time.time()
    _, out = playbook("db_upgrade.yml", "service_images_mariadb_version=11.8")
    out = re.sub(r"\s+", " ", out)
    TIMES["upgrade"] = time.time() - started
    TIMES["upgrade_site_down"] = float(re.search(r"to 11\.8\.[0-9]+ in ([0-9.]+) s", out).group(1))
    assert server_version().startswith("11.8."), server_version()
    assert container_running(DB)["image"] != before_image
    assert container_running(WEB)["running"]
    assert not volume_exists(COPY_VOLUME)
    stop_cron()
    assert table_dumps(normalise_cron=True) == before
    assert int(sql("SELECT COUNT(*) FROM mdl_day2_course")[0][0]) == 300
    # the server keeps utf8mb4_unicode_ci, also where 11.8 would pick utf8mb4_uca1400_ai_ci for utf8mb4
    assert sql("SELECT @@collation_server, @@character_set_collations LIKE '%utf8mb4=utf8mb4_unicode_ci%'") == [
        ["utf8mb4_unicode_ci", "1"]]
    sql("CREATE TABLE mdl_day2_collation_probe (name VARCHAR(10)) CHARSET utf8mb4")
    assert sql("SELECT table_collation FROM information_schema.tables "
               "WHERE table_name = 'mdl_day2_collation_probe'") == [["utf8mb4_unicode_ci"]]
    sql("DROP TABLE mdl_day2_collation_probe")
    assert http_status(LOGIN) == "200"
    # mariadb-upgrade recorded the new series in the datadir
    marker = run(["docker", "exec", DB, "cat", "/var/lib/mysql/mariadb_upgrade_info"]).stdout.decode()
    assert marker.startswith("11.8."), marker


def test_downgrade_and_compose_series_change_are_refused_before_any_change():
    before = container_running(DB)
    code, out = playbook("db_upgrade.yml", "service_images_mariadb_version=10.11", check=False)
    out = re.sub(r"\s+", " ", out)
    assert code != 0 and "that is a DOWNGRADE" in out and "Nothing was changed" in out, out[-3000:]
    # the plain deployment (the inventory still says 10.11) refuses to start 10.11 on 11.8 data
    code, out = playbook("compose.yml", {"moodle_image_source_type": "local",
                                         "moodle_image_source_path": str(ROOT / "build" / "moodle-standin")},
                         check=False)
    out = re.sub(r"\s+", " ", out)
    assert code != 0 and "holds MariaDB 11.8 data" in out, out[-3000:]
    assert container_running(DB) == before
    assert server_version().startswith("11.8.")
    print(f"db upgrade 10.11 -> 11.8 on the stand-in data: {TIMES.get('upgrade', 0):.0f} s playbook "
          f"({TIMES.get('upgrade_site_down', 0):.0f} s site down); failed upgrade + rollback "
          f"{TIMES.get('failed_upgrade_with_rollback', 0):.0f} s (rollback {TIMES.get('rollback', 0):.0f} s)")
