# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The background scheduler: a backup (with retention) at each daily time of the config, forever.

Runs on hosts without systemd (started by the role with start-stop-daemon) and in the scheduler
container."""

from __future__ import annotations

import argparse
import datetime as dt
import random
import time

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.backup import cmd_backup
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError, log
from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import VersionError


def next_run(now, times, delay=0):
    """The next UTC datetime after ``now`` matching one of the daily ``HH:MM`` times."""
    candidates = []
    for text in times:
        hour, minute = (int(x) for x in text.split(":"))
        when = now.replace(hour=hour, minute=minute, second=0, microsecond=0) + dt.timedelta(seconds=delay)
        if when <= now:
            when += dt.timedelta(days=1)
        candidates.append(when)
    return min(candidates)


def cmd_schedule(config, args):  # pylint: disable=unused-argument
    times = config.get("times") or ["02:15"]
    while True:
        delay = random.randint(0, int(config.get("randomized_delay_seconds", 0)))  # noqa: S311 - not crypto
        when = next_run(dt.datetime.now(dt.UTC), times, delay)
        log(f"next backup at {bm.isoformat(when)}")
        while dt.datetime.now(dt.UTC) < when:
            time.sleep(min(60, max(1, (when - dt.datetime.now(dt.UTC)).total_seconds())))
        try:
            cmd_backup(config, argparse.Namespace(forget=True))
        except (EngineError, bm.ManifestError, VersionError) as exc:
            log(f"ERROR: scheduled backup failed: {exc}")
