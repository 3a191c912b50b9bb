# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore-drill checks of a restored throwaway copy (the playbook creates and removes the copy)."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import (
    EngineError,
    log,
    sql_ident,
    tail,
    write_atomic,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.metrics import render_drill_textfile
from ansible_collections.moodle.platform.plugins.module_utils._backup.restic import Restic
from ansible_collections.moodle.platform.plugins.module_utils._backup.sites import (
    db_engine,
    db_query,
    docker,
    quote_ident,
    volume_mountpoint,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.verify import verify


def cmd_drill_check(config, args):
    started = time.time()
    restic = Restic(config)
    checks = []

    def check(name, ok, detail=""):
        checks.append({"check": name, "ok": bool(ok), "detail": detail})

    manifest, problems = verify(config, restic, args.backup_id, force=True)
    check("backup verifies (manifest, snapshots, dump checksum)", not problems,
          "; ".join(p["message"] for p in problems))
    if manifest and not bm.validate_manifest(manifest):
        try:
            prefix = sql_ident(manifest["database"]["prefix"])
            schema = "current_schema()" if db_engine(config) == "postgresql" else "DATABASE()"
            tables_sql = (f"SELECT table_name FROM information_schema.tables WHERE table_schema = {schema} "  # noqa: S608
                          f"AND table_name LIKE '{prefix}%'")  # prefix checked by sql_ident()
            rows = db_query(config, args.db_container, tables_sql, manifest["database"]["name"])
            restored = sorted(r[0] for r in rows)
            want = sorted(manifest["database"]["tables"])
            check("table count equals the manifest", restored == want,
                  f"restored {len(restored)}, manifest {len(want)}")
            key = [t for t in args.key_tables if t in manifest["database"]["tables"]] or want[:20]
            for table in key:
                count = db_query(config, args.db_container, f"SELECT COUNT(*) FROM {quote_ident(config, table)}",  # noqa: S608
                                 manifest["database"]["name"])[0][0]
                check(f"row count of {table}", int(count) == manifest["database"]["tables"][table],
                      f"restored {count}, manifest {manifest['database']['tables'][table]}")
        except EngineError as exc:
            check("database reachable", False, str(exc))
        try:
            mountpoint = Path(volume_mountpoint(args.volume))
            bad = []
            for entry in manifest["moodledata"]["sample"]:
                path = mountpoint / entry["path"]
                if not path.is_file() or bm.sha256_file(path) != entry["sha256"]:
                    bad.append(entry["path"])
            check("moodledata sample present with recorded hashes", not bad,
                  f"{len(manifest['moodledata']['sample']) - len(bad)}/{len(manifest['moodledata']['sample'])} ok"
                  + (f"; bad: {bad[:5]}" if bad else ""))
        except EngineError as exc:
            check("moodledata volume", False, str(exc))
    if args.web_status is not None:
        check(f"web answers 200 on {args.web_path}", args.web_status == "200", f"HTTP {args.web_status or 'none'}")
    elif args.web_container:
        probe = docker("exec", args.web_container, "php", "-r",
                       '$c = @file_get_contents("http://127.0.0.1' + args.web_path + '"); '
                       'echo isset($http_response_header[0]) ? $http_response_header[0] : "no response";',
                       check=False)
        status = probe.stdout.decode().strip()
        check(f"web answers 200 on {args.web_path}", " 200" in status, status or tail(probe.stderr))
    failed = [c for c in checks if not c["ok"]]
    finished = time.time()
    report = {"backup_id": manifest["backup_id"] if manifest else args.backup_id, "project": config["project"],
              "success": not failed, "checks": checks, "checks_failed": len(failed),
              "finished": bm.isoformat(dt.datetime.fromtimestamp(finished, dt.UTC)),
              "duration_seconds": round(finished - started + args.extra_seconds, 3)}
    write_atomic(Path(config["state_dir"]) / "drills" / "last.json", json.dumps(report, indent=2) + "\n", 0o600)
    textfile = Path(config["textfile_dir"]) / f"moodle_restore_drill_{config['project']}.prom"
    try:
        write_atomic(textfile, render_drill_textfile(config["project"], success=not failed, finished=int(finished),
                                                     duration=report["duration_seconds"],
                                                     checks_failed=len(failed)))
    except OSError as exc:
        log(f"could not write {textfile}: {exc}")
    return report
