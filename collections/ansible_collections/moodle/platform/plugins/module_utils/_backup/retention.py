# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention: restic ``forget --prune`` keeping the newest N and daily/weekly/monthly backups, grouped by host
and kind tag so the three snapshots of one backup (database, moodledata, manifest) are kept together.

The newest ``last`` backups are kept whatever their day: with daily buckets alone, a backup taken later the same
day (the pre-upgrade backup, a second manual one) would make the forget after it remove the earlier one of that day."""

from __future__ import annotations

import json

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import log, run_lock
from ansible_collections.moodle.platform.plugins.module_utils._backup.restic import Restic


def forget(config, restic, dry_run):
    keep = config["retention"]
    result = {}
    for kind, tag in bm.KIND_TAGS.items():
        args = ["forget", "--json", "--host", config["project"], "--group-by", "host", "--tag",
                f"{bm.TAG_PLATFORM},{tag}", "--keep-daily", str(keep["daily"]), "--keep-weekly",
                str(keep["weekly"]), "--keep-monthly", str(keep["monthly"])]
        if keep.get("last"):
            args += ["--keep-last", str(keep["last"])]
        if dry_run:
            args.append("--dry-run")
        out = restic.run(*args).stdout.decode().strip()
        groups = json.loads(out or "[]") or []
        result[kind] = {"keep": sum(len(g.get("keep") or []) for g in groups),
                        "remove": sum(len(g.get("remove") or []) for g in groups),
                        "reasons": [r for g in groups for r in (g.get("reasons") or [])]}
    if not dry_run:
        log("pruning unreferenced data from the repository")
        restic.run("prune")
    return result


def cmd_forget(config, args):
    restic = Restic(config)
    with run_lock(config["state_dir"]):
        return forget(config, restic, args.dry_run)


def expected_retention(times, daily, weekly, monthly, last=0):
    """Times (UTC datetimes) that restic ``forget --keep-last L --keep-daily D --keep-weekly W --keep-monthly M``
    keeps (``last`` = 0: no --keep-last).

    restic walks snapshots newest first; a snapshot is kept for a bucket kind when its bucket (day,
    ISO week, month) differs from the last one kept for that kind and that kind still has budget.
    Returns {time: [reasons]} for the kept ones.
    """
    kept = {}
    rules = [("last snapshot", last, lambda t: t),  # every snapshot is a bucket of its own
             ("daily snapshot", daily, lambda t: t.strftime("%Y-%m-%d")),
             ("weekly snapshot", weekly, lambda t: "{}-{:02d}".format(*t.isocalendar()[:2])),
             ("monthly snapshot", monthly, lambda t: t.strftime("%Y-%m"))]
    budget = {name: count for name, count, _bucket_of in rules}
    previous = {name: None for name, _count, _bucket_of in rules}
    for when in sorted(times, reverse=True):
        for name, _count, bucket_of in rules:
            bucket = bucket_of(when)
            if budget[name] > 0 and bucket != previous[name]:
                kept.setdefault(when, []).append(name)
                previous[name] = bucket
                budget[name] -= 1
    return kept
