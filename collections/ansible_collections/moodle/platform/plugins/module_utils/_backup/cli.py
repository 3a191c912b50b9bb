# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""moodle-backup: the backup engine of moodle.platform (Compose hosts, the scheduler container, Kubernetes Jobs).

Run as ``python3 -m ansible_collections.moodle.platform.plugins.module_utils._backup.cli`` (the
``moodle-backup`` launcher the backup role installs on hosts and into the backup image).  With
``--config`` it works on one site of a Docker host (the JSON the moodle.platform.backup role renders);
without it, in direct mode, from options and MOODLE_DB_* variables.  Prints one JSON result on stdout,
progress on stderr.

Secrets: the restic password is a file (RESTIC_PASSWORD_FILE); S3 keys come from an env file read
here and passed only in restic's environment; the DB password is read from the secret file inside
the db container (or, in direct mode, from MOODLE_DB_PASSWORD_FILE).  None of them is ever on a
command line or printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from ansible_collections.moodle.platform.plugins.module_utils._backup import manifest as bm
from ansible_collections.moodle.platform.plugins.module_utils._backup.backup import cmd_backup, cmd_init
from ansible_collections.moodle.platform.plugins.module_utils._backup.common import EngineError, log
from ansible_collections.moodle.platform.plugins.module_utils._backup.config import direct_config, load_config
from ansible_collections.moodle.platform.plugins.module_utils._backup.drill import cmd_drill_check
from ansible_collections.moodle.platform.plugins.module_utils._backup.migrate import (
    cmd_import_db,
    cmd_import_files,
    cmd_inspect_migration,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.moodle_version import VersionError
from ansible_collections.moodle.platform.plugins.module_utils._backup.restore import (
    cmd_restore,
    cmd_restore_db,
    cmd_restore_files,
)
from ansible_collections.moodle.platform.plugins.module_utils._backup.retention import cmd_forget
from ansible_collections.moodle.platform.plugins.module_utils._backup.schedule import cmd_schedule
from ansible_collections.moodle.platform.plugins.module_utils._backup.verify import (
    cmd_image_version,
    cmd_list,
    cmd_show,
    cmd_verify,
)

HANDLERS = {"init": cmd_init, "backup": cmd_backup, "list": cmd_list, "show": cmd_show, "verify": cmd_verify,
            "restore": cmd_restore, "restore-db": cmd_restore_db, "restore-files": cmd_restore_files,
            "drill-check": cmd_drill_check, "forget": cmd_forget, "schedule": cmd_schedule,
            "image-version": cmd_image_version, "inspect-migration": cmd_inspect_migration,
            "import-db": cmd_import_db, "import-files": cmd_import_files}


def _direct_parent():
    """Options of direct mode (no --config): what a Kubernetes Job passes; the database comes from
    MOODLE_DB_TYPE/HOST/PORT/NAME/USER/PASSWORD_FILE/PREFIX (type mariadb or pgsql), restic's credentials
    from its own variables."""
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("direct mode (no --config: Kubernetes Jobs, the scheduler container)")
    group.add_argument("--platform", choices=["kubernetes", "compose"], help="recorded in the manifest")
    group.add_argument("--project", help="site name: restic host and backup id suffix")
    group.add_argument("--repository", help="restic repository (default: RESTIC_REPOSITORY)")
    group.add_argument("--dataroot", help="moodledata directory (mounted)")
    group.add_argument("--version-php", dest="version_php", help="the Moodle code's version.php")
    group.add_argument("--version-json", dest="version_json",
                       help="version.php as evaluated by the Moodle image's PHP (JSON: version, release, branch)")
    group.add_argument("--image", help="Moodle image reference the site runs (recorded in the manifest)")
    group.add_argument("--state-dir", dest="state_dir", help="lock + restic cache (default: $TMPDIR/moodle-backup)")
    group.add_argument("--textfile-dir", dest="textfile_dir", help="write the Prometheus status file here")
    group.add_argument("--keep-daily", dest="keep_daily", type=int)
    group.add_argument("--keep-weekly", dest="keep_weekly", type=int)
    group.add_argument("--keep-monthly", dest="keep_monthly", type=int)
    group.add_argument("--keep-last", dest="keep_last", type=int,
                       help="the newest N backups are kept whatever their day (default 3)")
    group.add_argument("--summary-file", dest="summary_file",
                       help="write a JSON summary (<= 4 KiB) here, e.g. /dev/termination-log")
    return parent


def parser():
    main_parser = argparse.ArgumentParser(prog="moodle-backup", description=__doc__.split("\n\n", maxsplit=1)[0])
    main_parser.add_argument("--config", help="JSON config rendered by the moodle.platform.backup role "
                                              "(without it: direct mode from options and MOODLE_DB_* variables)")
    main_parser.add_argument("--offsite", action="store_true", help="work on the off-site (S3) repository instead")
    direct = _direct_parent()
    sub = main_parser.add_subparsers(dest="command", required=True)
    sub.add_parser("init", parents=[direct], help="create the restic repository if it does not exist")
    p = sub.add_parser("backup", parents=[direct], help="database + moodledata + manifest, then status file")
    p.add_argument("--forget", action="store_true", help="apply retention (forget --prune) afterwards")
    sub.add_parser("list", parents=[direct], help="complete backups in the repository")
    p = sub.add_parser("show", parents=[direct], help="print a manifest")
    p.add_argument("backup_id", nargs="?", default="latest")
    p = sub.add_parser("restore", parents=[direct], help="direct mode: verify, maintenance on, database + moodledata")
    p.add_argument("--backup-id", dest="backup_id", default="latest")
    p.add_argument("--force", action="store_true", help="accept a different Moodle major version")
    p.add_argument("--maintenance-off", dest="maintenance_off", action="store_true",
                   help="leave maintenance mode when done (else the site stays in maintenance for checks)")
    p = sub.add_parser("verify", parents=[direct], help="refuse-or-accept checks of a backup (read-only)")
    p.add_argument("backup_id", nargs="?", default="latest")
    p.add_argument("--target-container", help="web container whose version.php the backup must match")
    p.add_argument("--target-version-php", help="a version.php file the backup must match")
    p.add_argument("--target-image", help="a Moodle image whose version.php the backup must match")
    p.add_argument("--target-db-container", dest="target_db_container",
                   help="PostgreSQL: the database container the backup will load into (a dump of a newer major is refused)")
    p.add_argument("--force", action="store_true", help="accept a different Moodle major version")
    p.add_argument("--read-data", action="store_true", help="also run restic check --read-data")
    p = sub.add_parser("restore-db", help="replace the database with the backup's dump")
    p.add_argument("backup_id")
    p.add_argument("--db-container")
    p = sub.add_parser("restore-files", help="replace moodledata with the backup's snapshot")
    p.add_argument("backup_id")
    p.add_argument("--volume")
    p = sub.add_parser("drill-check", help="checks of a restored throwaway copy; JSON report + textfile metric")
    p.add_argument("backup_id")
    p.add_argument("--db-container", required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--web-container")
    p.add_argument("--web-path", default="/login/index.php")
    p.add_argument("--web-status", help="HTTP status the caller measured (instead of probing --web-container)")
    p.add_argument("--key-tables", nargs="*", default=["mdl_config", "mdl_user", "mdl_course", "mdl_files",
                                                       "mdl_context", "mdl_course_modules"])
    p.add_argument("--extra-seconds", type=float, default=0.0, help="time already spent restoring (for the metric)")
    p = sub.add_parser("inspect-migration", help="what a migration source holds (layout, config.php, dump)")
    p.add_argument("--source", required=True, help="moodledata directory, Bitnami volume or .tar(.gz) archive")
    p.add_argument("--dump", required=True,
                   help="mysqldump/mariadb-dump SQL, pg_dump plain SQL or custom archive (-Fc), optionally gzipped")
    p.add_argument("--config-php")
    p.add_argument("--db-container", help="PostgreSQL target: the running database container (its major version "
                                          "is the newest a dump may come from)")
    p.add_argument("--target-pg-major", dest="target_pg_major", type=int,
                   help="PostgreSQL target not running yet: the major version it will run")
    p = sub.add_parser("import-db", help="load an old dump (SQL, or pg_dump -Fc; gzipped or not) into a database "
                                         "container of the site's database type")
    p.add_argument("--dump", required=True)
    p.add_argument("--db-container", required=True)
    p.add_argument("--database", default="moodle")
    p = sub.add_parser("import-files", help="copy old moodledata (dir, Bitnami volume, archive) into a volume")
    p.add_argument("--source", required=True)
    p.add_argument("--volume", required=True)
    p.add_argument("--uid", type=int, default=33)
    p = sub.add_parser("image-version", help="version.php of a Moodle image (JSON)")
    p.add_argument("image")
    sub.add_parser("schedule", parents=[direct], help="run forever: a backup (with retention) at each daily time of the config")
    p = sub.add_parser("forget", parents=[direct], help="apply retention (keep last/daily/weekly/monthly) and prune")
    p.add_argument("--dry-run", action="store_true")
    return main_parser


def write_summary(path, result):
    """The result for whoever started the run (Kubernetes: the termination message, <= 4 KiB)."""
    if isinstance(result, dict) and result.get("format") == bm.FORMAT:
        result = bm.summarize_manifest(result)
    text = json.dumps(result, sort_keys=True, separators=(",", ":"))
    if len(text.encode()) > 4096:
        text = json.dumps({"failed": result.get("failed", False), "msg": str(result.get("msg", ""))[:3000]})
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _config(args):
    if args.config:
        config = load_config(args.config)
        retention_options = ("keep_daily", "keep_weekly", "keep_monthly", "keep_last")
        if config.get("access") == "direct" or any(getattr(args, k, None) for k in retention_options):
            config = direct_config(args, base=config)
    else:
        config = direct_config(args)
    if args.offsite:
        if not config.get("offsite_repository"):
            raise EngineError("no off-site repository is configured (backup_s3_enabled)")
        config["repository"], config["env_file"] = config["offsite_repository"], config.get("offsite_env_file", "")
        config["offsite_repository"] = ""
    return config


def main(argv=None):
    args = parser().parse_args(argv)
    summary_file = getattr(args, "summary_file", None)
    try:
        result = HANDLERS[args.command](_config(args), args)
    except (EngineError, bm.ManifestError, VersionError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError)):
            exc = EngineError(f"{exc} (is the state directory, TMPDIR or the repository writable?)")
        sys.stdout.write(json.dumps({"failed": True, "msg": str(exc)}) + "\n")
        log(f"ERROR: {exc}")
        if summary_file:
            with contextlib.suppress(OSError):
                write_summary(summary_file, {"failed": True, "msg": str(exc)})
        return 1
    if summary_file:
        write_summary(summary_file, result)
    sys.stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    if isinstance(result, dict) and (result.get("ok") is False or result.get("success") is False):
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
