"""Unit tests of the backup manifest format (plugins/module_utils/_backup/manifest.py), its status files
(metrics.py) and the retention rule the engine relies on (retention.py)."""

import copy
import datetime as dt

import pytest
from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.metrics import parse_textfile, render_backup_textfile
from ansible_collections.moodle.platform.plugins.module_utils._backup.retention import expected_retention

UTC = dt.UTC
MOODLE = {"version": "2024100706.00", "release": "4.5.6 (Build: 20250811)", "branch": "405", "maturity": "200"}


def _manifest(**over):
    started = dt.datetime(2026, 11, 24, 2, 0, 0, tzinfo=UTC)
    args = {
        "backup_id": bm.new_backup_id(started, "moodle"), "project": "moodle", "platform": "compose",
        "started": started, "completed": started + dt.timedelta(seconds=42),
        "moodle": MOODLE,
        "image": {"reference": "moodle-platform/moodle:test", "id": "sha256:" + "a" * 64},
        "database": {"engine": "mariadb", "name": "moodle", "prefix": "mdl_", "dump_file": "database.sql",
                     "sha256": "b" * 64, "size_bytes": 1000, "snapshot_id": "1" * 64, "tables": {"mdl_user": 2}},
        "moodledata": {"snapshot_id": "2" * 64, "file_count": 3, "size_bytes": 300,
                       "sample": [{"path": "filedir/aa/bb/x", "sha256": "c" * 64, "size_bytes": 100}]},
    }
    args.update(over)
    return bm.build_manifest(**args)


def test_manifest_roundtrip_is_canonical_and_valid():
    manifest = _manifest()
    text = bm.dumps(manifest)
    assert bm.loads(text) == manifest
    assert bm.dumps(bm.loads(text)) == text
    assert bm.validate_manifest(manifest) == []
    assert manifest["backup_id"] == "20261124T020000Z-moodle"
    assert manifest["duration_seconds"] == 42


def test_build_refuses_invalid_manifest():
    with pytest.raises(bm.ManifestError, match="sha256"):
        _manifest(database={"engine": "mariadb", "name": "moodle", "prefix": "mdl_", "dump_file": "d",
                            "sha256": "nothex", "size_bytes": 1, "snapshot_id": "1", "tables": {}})


@pytest.mark.parametrize("mutate, code", [
    (lambda m: m.pop("database"), "incomplete"),
    (lambda m: m.__setitem__("status", "running"), "incomplete"),
    (lambda m: m.__setitem__("format", "other"), "malformed"),
    (lambda m: m.__setitem__("format_version", 99), "unsupported"),
    (lambda m: m["moodledata"].pop("snapshot_id"), "incomplete"),
])
def test_validate_reports_each_defect(mutate, code):
    manifest = copy.deepcopy(_manifest())
    mutate(manifest)
    problems = bm.validate_manifest(manifest)
    assert [p.code for p in problems] == [code]


def test_check_restorable_accepts_good_backup():
    manifest = _manifest()
    assert bm.check_restorable(manifest, target={"branch": "405", "version": "2024100706.00"},
                               available_snapshots=["1" * 64, "2" * 64], dump_sha256="b" * 64) == []


def test_check_restorable_refusals():
    manifest = _manifest()
    missing = bm.check_restorable(manifest, available_snapshots=["2" * 64])
    assert [p.code for p in missing] == ["incomplete"] and "database snapshot" in missing[0].message
    bad_sum = bm.check_restorable(manifest, dump_sha256="d" * 64)
    assert [p.code for p in bad_sum] == ["checksum"]
    other = bm.check_restorable(manifest, target={"branch": "500", "version": "2025041400"})
    assert [(p.code, p.forceable) for p in other] == [("version", True)]
    assert bm.check_restorable(manifest, target={"branch": "500", "version": "2025041400"},
                               allow_other_major=True) == []
    older = bm.check_restorable(manifest, target={"branch": "405", "version": "2024100700.00"})
    assert [p.code for p in older] == ["downgrade"]
    broken = copy.deepcopy(manifest)
    broken["moodle"]["branch"] = "4.5"
    assert [p.code for p in bm.check_restorable(broken, target={"branch": "405", "version": "2024100706.00"})] == ["malformed"]


def test_textfile_keeps_last_success_across_failures():
    manifest = _manifest()
    ok = render_backup_textfile("moodle", last_run=1000, success=True, manifest=manifest, added_bytes=7)
    assert 'moodle_backup_last_success_timestamp_seconds{project="moodle"} 1000' in ok
    assert 'moodle_backup_size_bytes{component="database",project="moodle"} 1000' in ok
    assert "# TYPE moodle_backup_duration_seconds gauge" in ok
    failed = render_backup_textfile("moodle", last_run=2000, success=False, previous=parse_textfile(ok))
    values = parse_textfile(failed)
    assert values["moodle_backup_last_run_success"] == 0
    assert values["moodle_backup_last_run_timestamp_seconds"] == 2000
    assert values["moodle_backup_last_success_timestamp_seconds"] == 1000
    assert values["moodle_backup_duration_seconds"] == 42


def test_expected_retention_counts_for_a_long_daily_history():
    start = dt.datetime(2025, 1, 1, 2, 0, tzinfo=UTC)
    times = [start + dt.timedelta(days=i) for i in range(500)]
    kept = expected_retention(times, 7, 4, 12)
    reasons = [r for rs in kept.values() for r in rs]
    assert reasons.count("daily snapshot") == 7
    assert reasons.count("weekly snapshot") == 4
    assert reasons.count("monthly snapshot") == 12
    newest = max(times)
    assert kept[newest] == ["daily snapshot", "weekly snapshot", "monthly snapshot"]
    # 7 days + 3 older week-ends + 11 older month-ends, minus overlaps of those week-ends with month-ends
    assert 7 <= len(kept) <= 7 + 4 + 12


def test_keep_last_keeps_an_earlier_backup_of_the_same_day():
    """A manual backup at 10:00 and the pre-upgrade backup at 14:00 the same day: daily buckets alone keep only
    the 14:00 one; the newest-N rule keeps both (and nothing else changes)."""
    nightly = [dt.datetime(2026, 11, d, 2, 0, tzinfo=UTC) for d in range(1, 24)]
    manual, pre_upgrade = (dt.datetime(2026, 11, 23, h, 0, tzinfo=UTC) for h in (10, 14))
    times = [*nightly, manual, pre_upgrade]
    without = expected_retention(times, 7, 4, 12)
    assert manual not in without and nightly[-1] not in without and pre_upgrade in without
    kept = expected_retention(times, 7, 4, 12, last=3)
    assert kept[pre_upgrade][0] == "last snapshot" and "last snapshot" in kept[manual]
    assert kept[nightly[-1]] == ["last snapshot"]  # the third newest: kept only by the newest-N rule
    assert set(kept) == set(without) | {manual, nightly[-1]}


@pytest.mark.parametrize("have, site, refused", [
    ("mariadb", "mariadb", False), ("postgresql", "postgresql", False),
    ("mariadb", "postgresql", True), ("postgresql", "mariadb", True),
])
def test_restore_refuses_a_dump_of_the_other_database(have, site, refused):
    database = {**_manifest()["database"], "engine": have}
    problems = bm.check_restorable(_manifest(database=database), engine=site, allow_other_major=True)
    assert [p.code for p in problems] == (["database_type"] if refused else [])
    if refused:
        assert not problems[0].forceable
        assert bm.ENGINE_NAMES[have] in problems[0].message and bm.ENGINE_NAMES[site] in problems[0].message
