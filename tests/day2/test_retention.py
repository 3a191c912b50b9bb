"""Retention: restic forget --prune as the engine runs it keeps exactly the 3 newest + 7 daily / 4 weekly /
12 monthly backups over a synthetic history (snapshots written with fake times), and keeps the three snapshots
of each backup (database, moodledata, manifest) together."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.retention import expected_retention

from conftest import ENGINE, ENGINE_ENV

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 24, 2, 15, tzinfo=UTC)


def synthetic_history():
    """Daily for 10 days (plus runs 6 h before two of them, and a manual one 2 h before the newest), weekly for
    8 weeks, twice a month for 15 months."""
    times = {NOW - dt.timedelta(days=d) for d in range(10)}
    times |= {NOW - dt.timedelta(days=d, hours=6) for d in (1, 3)}
    times.add(NOW - dt.timedelta(hours=2))  # a manual backup earlier the same day as the newest one
    times |= {NOW - dt.timedelta(weeks=w, days=3) for w in range(2, 10)}
    times |= {NOW - dt.timedelta(days=15 * n + 1) for n in range(4, 31)}
    return sorted(times)


def _backup(env, kind, when):
    backup_id = bm.new_backup_id(when, "site")
    subprocess.run(["restic", "backup", "-q", "--host", "site", "--time", when.strftime("%Y-%m-%d %H:%M:%S"),
                    "--stdin", "--stdin-filename", f"{kind}.bin", "--tag",
                    f"{bm.TAG_PLATFORM},backup:{backup_id},{bm.KIND_TAGS[kind]}"],
                   input=f"{kind} {backup_id}".encode(), env=env, check=True, capture_output=True)


def _times(env, kind):
    out = subprocess.run(["restic", "snapshots", "--json", "--host", "site", "--tag", bm.KIND_TAGS[kind]], env=env,
                         check=True, capture_output=True).stdout
    return sorted(dt.datetime.fromisoformat(s["time"].replace("Z", "+00:00")).replace(microsecond=0)
                  for s in json.loads(out))


def test_retention_keeps_exactly_3_last_7_daily_4_weekly_12_monthly(tmp_path):
    (tmp_path / "pw").write_text("retention-test\n")
    config = {"project": "site", "repository": str(tmp_path / "repo"), "password_file": str(tmp_path / "pw"),
              "state_dir": str(tmp_path / "state"), "moodledata_volume": "unused",
              "retention": {"daily": 7, "weekly": 4, "monthly": 12, "last": 3}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {"RESTIC_REPOSITORY": config["repository"], "RESTIC_PASSWORD_FILE": config["password_file"],
           "PATH": "/usr/bin:/bin", "RESTIC_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run(["restic", "init", "-q", "--repository-version", "2"], env=env, check=True, capture_output=True)
    history = synthetic_history()
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(lambda args: _backup(env, *args), [(k, t) for k in bm.KIND_TAGS for t in history]))

    dry = subprocess.run([*ENGINE, "--config", str(tmp_path / "config.json"), "forget", "--dry-run"],
                         capture_output=True, check=True, env=ENGINE_ENV)
    planned = json.loads(dry.stdout)
    assert all(_times(env, k) == history for k in bm.KIND_TAGS), "a dry run removes nothing"

    done = subprocess.run([*ENGINE, "--config", str(tmp_path / "config.json"), "forget"],
                          capture_output=True, check=True, env=ENGINE_ENV)
    result = json.loads(done.stdout)
    expected = expected_retention(history, 7, 4, 12, last=3)
    # the earlier backup of the newest day is kept only by the newest-3 rule
    same_day_earlier = NOW - dt.timedelta(hours=2)
    assert expected[same_day_earlier] == ["last snapshot"]
    for kind in bm.KIND_TAGS:
        reasons = [m for r in result[kind]["reasons"] for m in r["matches"]]
        assert reasons.count("last snapshot") == 3, kind
        assert reasons.count("daily snapshot") == 7, kind
        assert reasons.count("weekly snapshot") == 4, kind
        assert reasons.count("monthly snapshot") == 12, kind
        assert result[kind] == planned[kind] | {"reasons": result[kind]["reasons"]}
        kept = _times(env, kind)
        assert kept == sorted(expected), kind
        assert same_day_earlier in kept, kind
        assert result[kind]["keep"] == len(kept) and result[kind]["remove"] == len(history) - len(kept)
    # the three kinds of each kept backup survive together
    assert _times(env, "database") == _times(env, "moodledata") == _times(env, "manifest")
    assert len(history) - len(_times(env, "manifest")) >= 20, "the history must be long enough to drop backups"
    # prune ran: unreferenced data is gone, the repository still checks
    subprocess.run(["restic", "check"], env=env, check=True, capture_output=True)
    assert Path(config["repository"], "data").is_dir()
