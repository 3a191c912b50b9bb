"""Day-2 operations against a Compose stack running the Moodle STAND-IN (not Moodle).

Order matters (one stack for the module, like an operator's day): backup -> destroy everything ->
restore; restore drills (good, truncated dump, missing repository file); refusals; off-site copy to
an S3 EMULATOR (moto); upgrade A -> B with an injected failure (rolled back) and then for real;
migration (dry run, Bitnami layout).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm

import s3_emulator
import stacktest
from conftest import (
    CRON,
    DB,
    ENGINE_CONFIG,
    PROJECT,
    ROOT,
    TEXTFILE_DIR,
    WEB,
    container_running,
    engine,
    http_status,
    moodledata_hashes,
    playbook,
    run,
    sql,
    stop_cron,
    table_dumps,
)

pytestmark = pytest.mark.usefixtures("seeded")
SCRATCH = Path("/var/tmp/moodle-platform-day2-test")  # noqa: S108 - fixed path, root-only test host
STATE = {}


def latest_backup_id(config=ENGINE_CONFIG):
    return engine("list", config=config)["backups"][-1]["backup_id"]


def restic_env(config_path):
    config = json.loads(Path(config_path).read_text())
    return {"RESTIC_REPOSITORY": config["repository"], "RESTIC_PASSWORD_FILE": config["password_file"],
            "PATH": "/usr/bin:/bin"}


def restic(config_path, *args, input_bytes=None):
    return subprocess.run(["restic", *args], env=restic_env(config_path), capture_output=True, input=input_bytes,
                          check=True).stdout


def scratch_copy(name):
    """A copy of the site's restic repository + engine config, to damage without harming the site."""
    target = SCRATCH / name
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    config = json.loads(ENGINE_CONFIG.read_text())
    shutil.copytree(config["repository"], target / "repo")
    config.update(repository=str(target / "repo"), state_dir=str(target / "state"), offsite_repository="")
    (target / "config.json").write_text(json.dumps(config))
    return target / "config.json"


def tamper(config_path, backup_id, *, dump_bytes=None, moodle=None):
    """Store a manipulated copy of a backup under a new id (later time) and return that id."""
    manifest = engine("show", backup_id, config=config_path)
    started = bm.parse_time(manifest["started"])
    when = started + dt.timedelta(seconds=1)
    new_id = bm.new_backup_id(when, PROJECT)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S")
    tags = f"moodle-platform,backup:{new_id}"
    if dump_bytes is not None:
        out = restic(config_path, "backup", "--json", "--host", PROJECT, "--time", stamp, "--stdin", "--stdin-filename",
                     "database.sql", "--tag", f"{tags},kind:database", input_bytes=dump_bytes)
        summary = [json.loads(x) for x in out.decode().splitlines() if '"summary"' in x][-1]
        snaps = json.loads(restic(config_path, "snapshots", "--json", "--tag", f"backup:{new_id}"))
        manifest["database"]["snapshot_id"] = next(s["id"] for s in snaps if s["short_id"] == summary["snapshot_id"][:8])
    if moodle is not None:
        manifest["moodle"].update(moodle)
    manifest["backup_id"] = new_id
    manifest["started"] = bm.isoformat(when)
    restic(config_path, "backup", "--host", PROJECT, "--time", stamp, "--stdin", "--stdin-filename", "manifest.json",
           "--tag", f"{tags},kind:manifest", input_bytes=bm.dumps(manifest).encode())
    return new_id


def prom_value(path, metric):
    for line in Path(path).read_text().splitlines():
        if line.startswith(metric + "{") or line.startswith(metric + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{metric} not in {path}")


# ------------------------------------------------------------------------------------------------
def test_backup_destroy_everything_restore_is_identical():
    stop_cron()  # cron bookkeeping would otherwise change rows between the snapshots compared
    before_tables, before_files = table_dumps(), moodledata_hashes()
    assert "mdl_day2_course" in before_tables and len(before_files) >= 40

    started = time.time()
    playbook("backup.yml")
    STATE["backup_seconds"] = time.time() - started
    backup_id = latest_backup_id()
    manifest = engine("show", backup_id)
    assert manifest["database"]["tables"]["mdl_day2_course"] == 300
    assert manifest["database"]["tables"]["mdl_user"] == int(sql("SELECT COUNT(*) FROM mdl_user")[0][0])
    assert not any(p.startswith(("cache/", "sessions/")) for p in (s["path"] for s in manifest["moodledata"]["sample"]))
    status = TEXTFILE_DIR / f"moodle_backup_{PROJECT}.prom"
    assert prom_value(status, "moodle_backup_last_run_success") == 1
    assert prom_value(status, "moodle_backup_last_success_timestamp_seconds") > time.time() - 600

    stacktest.destroy_everything(PROJECT)

    started = time.time()
    playbook("restore.yml", f"restore_backup_id={backup_id}", "restore_start_cron=false")
    STATE["restore_seconds"] = time.time() - started
    assert table_dumps() == before_tables
    assert moodledata_hashes() == before_files
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"
    print(f"backup {STATE['backup_seconds']:.0f}s, restore onto an empty host {STATE['restore_seconds']:.0f}s")


def test_restore_drill_passes_on_a_good_backup():
    playbook("restore_drill.yml")
    report = json.loads(Path("/var/lib/moodle-platform/backup/day2/drills/last.json").read_text())
    assert report["success"] is True, report
    names = {c["check"] for c in report["checks"]}
    assert {"table count equals the manifest", "moodledata sample present with recorded hashes"} <= names
    assert any(c["check"].startswith("web answers 200") and c["ok"] for c in report["checks"])
    assert any(c["check"] == "row count of mdl_user" and c["ok"] for c in report["checks"])
    assert prom_value(TEXTFILE_DIR / f"moodle_restore_drill_{PROJECT}.prom", "moodle_restore_drill_success") == 1
    leftovers = run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}-drill"])
    assert leftovers.stdout.decode().strip() == "", "the throwaway project must be removed"
    volumes = run(["docker", "volume", "ls", "-q", "--filter", f"name={PROJECT}-drill"])
    assert volumes.stdout.decode().strip() == ""
    assert container_running(WEB)["running"], "the live site is untouched"


def test_restore_drill_fails_on_a_truncated_dump():
    config = scratch_copy("truncated")
    good = latest_backup_id(config)
    manifest = engine("show", good, config=config)
    dump = restic(config, "dump", manifest["database"]["snapshot_id"], "/database.sql")
    bad = tamper(config, good, dump_bytes=dump[: len(dump) // 2])
    code, out = playbook("restore_drill.yml", f"restore_backup_id={bad}", f"restore_engine_config={config}", check=False)
    assert code != 0 and "Restore drill" in out and "FAILED" in out
    report = json.loads((config.parent / "state" / "drills" / "last.json").read_text())
    assert report["success"] is False
    assert any("checksum" in c["detail"] for c in report["checks"] if not c["ok"]), report
    assert prom_value(TEXTFILE_DIR / f"moodle_restore_drill_{PROJECT}.prom", "moodle_restore_drill_success") == 0


def test_restore_drill_fails_when_a_repository_file_is_missing():
    config = scratch_copy("missing-pack")
    packs = sorted((config.parent / "repo" / "data").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    # The repository is fresh for the session and holds one backup of the seeded site (plus the
    # drill's): its largest pack holds moodledata content of that backup.
    victim = [p for p in packs if p.is_file()][-1]
    victim.unlink()
    code, out = playbook("restore_drill.yml", f"restore_engine_config={config}", check=False)
    assert code != 0 and "FAILED" in out
    report = json.loads((config.parent / "state" / "drills" / "last.json").read_text())
    assert report["success"] is False
    assert prom_value(TEXTFILE_DIR / f"moodle_restore_drill_{PROJECT}.prom", "moodle_restore_drill_success") == 0


# ------------------------------------------------------------------------------------------------
def _unchanged(before_web):
    now = container_running(WEB)
    assert now["started"] == before_web["started"], "the web container must not have been restarted"


@pytest.mark.parametrize("case", ["missing", "checksum", "version"])
def test_restore_refuses_bad_input_and_changes_nothing(case):
    stop_cron()
    before_web, before_tables = container_running(WEB), table_dumps()
    config, extra = ENGINE_CONFIG, []
    if case == "missing":
        backup_id, expect = "20000101T000000Z-day2", "does not exist"
    elif case == "checksum":
        config = scratch_copy("checksum")
        good = latest_backup_id(config)
        manifest = engine("show", good, config=config)
        dump = restic(config, "dump", manifest["database"]["snapshot_id"], "/database.sql")
        backup_id, expect = tamper(config, good, dump_bytes=dump.replace(b"student1", b"studentX", 1)), "checksum"
    elif case == "version":
        config = scratch_copy("version")
        backup_id = tamper(config, latest_backup_id(config), moodle={"branch": "500", "release": "5.0 (tampered)"})
        expect = "Moodle 5.0 but the image runs Moodle 4.5"
    if config != ENGINE_CONFIG:
        extra.append(f"restore_engine_config={config}")
    code, out = playbook("restore.yml", f"restore_backup_id={backup_id}", *extra, check=False)
    assert code != 0
    assert expect in out, out[-3000:]
    assert "Refusing" in out or "must be" in out
    _unchanged(before_web)
    assert table_dumps() == before_tables


def test_engine_refuses_malformed_ids_and_incomplete_backups():
    """The same checks restore.yml relays (its preflight runs `verify`), without a playbook run each."""
    malformed = engine("verify", "yesterday", check=False)
    assert malformed["ok"] is False and "is not a backup id" in malformed["problems"][0]["message"]
    config = scratch_copy("incomplete")
    good = latest_backup_id(config)
    manifest = engine("show", good, config=config)
    restic(config, "forget", manifest["database"]["snapshot_id"])  # the backup loses its database snapshot
    result = engine("verify", good, config=config, check=False)
    assert result["ok"] is False
    assert [p["code"] for p in result["problems"]] == ["incomplete"]
    assert "database snapshot" in result["problems"][0]["message"]
    refused = engine("restore-db", good, "--db-container", DB, config=config, check=False)
    assert refused["failed"] and "refusing to restore" in refused["msg"]


def test_version_mismatch_can_be_forced_past_the_check():
    config = scratch_copy("version-forced")
    backup_id = tamper(config, latest_backup_id(config), moodle={"branch": "500", "release": "5.0 (tampered)"})
    refused = engine("verify", backup_id, "--target-container", WEB, config=config, check=False)
    assert [p["code"] for p in refused["problems"]] == ["version"]
    forced = engine("verify", backup_id, "--target-container", WEB, "--force", config=config)
    assert forced["ok"] is True


# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def moto_s3():
    """An S3 EMULATOR (moto server, tests/s3_emulator.py) on 127.0.0.1 - not AWS - with request
    signatures checked."""
    with s3_emulator.moto_s3("127.0.0.1") as s3:
        yield s3


def _s3_vars(moto, secret):
    return {"backup_s3_enabled": True, "backup_s3_endpoint": moto["endpoint"], "backup_s3_bucket": "moodle-backups",
            "backup_s3_path": "day2", "backup_s3_access_key": moto["key"], "backup_s3_secret_key": secret}


def test_offsite_copy_to_s3_emulator(moto_s3):
    playbook("backup.yml", _s3_vars(moto_s3, moto_s3["secret"]))
    backup_id = latest_backup_id()
    keys = [o["Key"] for o in moto_s3["client"].list_objects_v2(Bucket="moodle-backups").get("Contents", [])]
    assert any(k.startswith("day2/data/") for k in keys) and "day2/config" in keys
    offsite = engine("--offsite", "list")
    assert backup_id in [b["backup_id"] for b in offsite["backups"]]
    verified = engine("--offsite", "verify", backup_id)
    assert verified["ok"] is True, verified


def test_offsite_copy_with_wrong_s3_credentials_fails_clearly(moto_s3):
    before = {o["Key"] for o in moto_s3["client"].list_objects_v2(Bucket="moodle-backups").get("Contents", [])}
    code, out = playbook("backup.yml", _s3_vars(moto_s3, "wrong-secret"), check=False)
    assert code != 0
    assert "off-site copy failed" in out, out[-2000:]
    assert "SignatureDoesNotMatch" in out or "Access Denied" in out, out[-2000:]
    assert "wrong-secret" not in out, "the S3 secret must never be printed"
    after = {o["Key"] for o in moto_s3["client"].list_objects_v2(Bucket="moodle-backups").get("Contents", [])}
    assert after == before
    status = TEXTFILE_DIR / f"moodle_backup_{PROJECT}.prom"
    assert prom_value(status, "moodle_backup_last_run_success") == 0
    # the S3 settings are only for these two tests: put the site's configuration back
    playbook("backup.yml")


# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_b():
    """The stand-in's variant B image, built by moodle.platform.moodle_image like any Moodle image."""
    out = SCRATCH / "image-b.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    run([str(Path(sys.executable).parent / "ansible-playbook"), str(ROOT / "tests/day2/build_standin_b.yml"),
         "-i", str(ROOT / "tests/day2/inventory"), "-e", f"day2_image_b_out={out}"], timeout=1800)
    return json.loads(out.read_text())["ref"]


def test_upgrade_with_injected_failure_rolls_back_to_a(image_b):
    image_a = container_running(WEB)["image"]
    before_tables, before_files = table_dumps(normalise_cron=True), moodledata_hashes()
    code, out = playbook("upgrade.yml", f"upgrade_image={image_b}",
                         {"upgrade_extra_env": {"MOODLE_STANDIN_UPGRADE_FAIL": "1"}}, check=False)
    assert code != 0
    assert "FAILED at step 'upgrade.php --non-interactive'" in out
    assert "Injected upgrade failure" in out and "Rolled back" in out
    assert container_running(WEB)["image"] == image_a
    assert sql("SELECT value FROM mdl_config WHERE name = 'version'")[0][0] == "2024100700.00"
    assert sql("SELECT COUNT(*) FROM mdl_config WHERE name = 'standin_upgrade_partial'")[0][0] == "0"
    stop_cron()
    assert table_dumps(normalise_cron=True) == before_tables
    assert moodledata_hashes() == before_files
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"


def test_upgrade_a_to_b_succeeds(image_b):
    playbook("upgrade.yml", f"upgrade_image={image_b}")
    assert container_running(WEB)["image"] == image_b
    assert sql("SELECT value FROM mdl_config WHERE name = 'version'")[0][0] == "2024100706.00"
    assert container_running(CRON)["image"] == image_b
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"
    assert int(sql("SELECT COUNT(*) FROM mdl_day2_course")[0][0]) == 300
    # cron.php --disable-wait ran before the switch and --enable after it (both required steps now)
    assert sql("SELECT value FROM mdl_config WHERE name = 'cron_enabled'")[0][0] == "1"


def test_upgrade_refuses_a_downgrade_and_changes_nothing(image_b):
    first = engine("list")["backups"][0]["backup_id"]
    image_a = engine("show", first)["image"]["reference"]  # the site ran A when it was first backed up
    before = container_running(WEB)
    assert before["image"] == image_b and image_a != image_b
    code, out = playbook("upgrade.yml", f"upgrade_image={image_a}", check=False)
    assert code != 0 and "that is a code downgrade" in out
    assert container_running(WEB)["started"] == before["started"]


def test_restore_matches_the_image_to_the_manifest(image_b):
    """The site runs B; restoring the first backup of this module (taken on A, after the course table
    was created; the AWX job tests earlier in the session took older ones) brings back A's data AND A's
    image."""
    manifests = [engine("show", b["backup_id"]) for b in engine("list")["backups"]]
    manifest = next(m for m in manifests if "mdl_day2_course" in m["database"]["tables"])
    first = manifest["backup_id"]
    image_a = manifest["image"]["reference"]
    assert container_running(WEB)["image"] == image_b and image_a != image_b
    playbook("restore.yml", f"restore_backup_id={first}")
    assert container_running(WEB)["image"] == image_a
    assert container_running(CRON)["image"] == image_a
    assert sql("SELECT value FROM mdl_config WHERE name = 'version'")[0][0] == manifest["moodle"]["version"]
    assert int(sql("SELECT COUNT(*) FROM mdl_day2_course")[0][0]) == manifest["database"]["tables"]["mdl_day2_course"]
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"


# ------------------------------------------------------------------------------------------------
def _old_site(tmp, prefix="mdl_"):
    """An 'old' site in the Bitnami image layout: <dir>/moodle/config.php + <dir>/moodledata, and a dump."""
    bitnami = tmp / "bitnami"
    (bitnami / "moodle").mkdir(parents=True)
    (bitnami / "moodle" / "config.php").write_text(
        "<?php\nunset($CFG);\nglobal $CFG;\n$CFG = new stdClass();\n$CFG->dbtype = 'mariadb';\n"
        "$CFG->dbname = 'bitnami_moodle';\n$CFG->dbuser = 'bn_moodle';\n"
        f"$CFG->prefix = '{prefix}';\n$CFG->wwwroot = 'http://old-moodle.example.org';\n"
        "$CFG->dataroot = '/bitnami/moodledata';\nrequire_once(__DIR__ . '/lib/setup.php');\n")
    run(["docker", "cp", f"{WEB}:/var/www/moodledata", str(bitnami / "moodledata")])
    (bitnami / "moodledata" / "filedir" / "zz" / "zz").mkdir(parents=True)
    (bitnami / "moodledata" / "filedir" / "zz" / "zz" / "migrated-marker").write_text("from the old site\n")
    sql("INSERT INTO mdl_user (username, password, email) VALUES ('migrated_user', 'x', 'm@example.com')")
    argv = ["docker", "exec", "--user", "0", DB, "sh", "-c",
            'MYSQL_PWD="$(cat /run/secrets/db_root_password)" exec mariadb-dump -uroot --single-transaction moodle']
    dump = run(argv).stdout
    sql("DELETE FROM mdl_user WHERE username = 'migrated_user'")
    with gzip.open(tmp / "moodle.sql.gz", "wb") as handle:
        handle.write(dump)
    run(["chmod", "-R", "a+rX", str(tmp)])
    return bitnami, tmp / "moodle.sql.gz"


def test_migration_dry_run_changes_nothing(tmp_path):
    bitnami, dump = _old_site(tmp_path)
    stop_cron()
    before_web, before_tables = container_running(WEB), table_dumps()
    _, out = playbook("migrate.yml", f"migrate_project={PROJECT}", f"migrate_db_dump={dump}",
                      f"migrate_moodledata={bitnami}")
    assert "DRY RUN" in out and "source layout: bitnami" in out and "http://old-moodle.example.org" in out
    _unchanged(before_web)
    assert table_dumps() == before_tables


def test_migration_refuses_another_table_prefix(tmp_path):
    bitnami, dump = _old_site(tmp_path, prefix="m_")
    code, out = playbook("migrate.yml", f"migrate_project={PROJECT}", f"migrate_db_dump={dump}",
                         f"migrate_moodledata={bitnami}", "migrate_dry_run=false", "migrate_overwrite=true",
                         check=False)
    assert code != 0 and "table prefix 'm_'" in out


def test_migration_of_a_bitnami_site(tmp_path):
    bitnami, dump = _old_site(tmp_path)
    playbook("migrate.yml", f"migrate_project={PROJECT}", f"migrate_db_dump={dump}",
             f"migrate_moodledata={bitnami}", "migrate_dry_run=false", "migrate_overwrite=true")
    assert sql("SELECT COUNT(*) FROM mdl_user WHERE username = 'migrated_user'")[0][0] == "1"
    files = moodledata_hashes()
    assert any(p.endswith("filedir/zz/zz/migrated-marker") for p in files)
    owner = run(["docker", "exec", WEB, "stat", "-c", "%U", "/var/www/moodledata/filedir/zz/zz/migrated-marker"])
    assert owner.stdout.decode().strip() == "www-data"
    assert http_status("http://127.0.0.1:8180/login/index.php") == "200"
