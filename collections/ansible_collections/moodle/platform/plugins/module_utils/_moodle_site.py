# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading the state of a Moodle site through its CLI (shared by moodle_info and the roles' checks)."""

from __future__ import annotations

import json
import time

from ansible_collections.moodle.platform.plugins.module_utils._moodle_connection import MoodleConnectionError

MARKER = "@@MOODLE_PLATFORM_JSON@@"
MODES = {1: "application", 2: "session", 4: "request"}

# Loads Moodle's config.php (so it sees exactly what Moodle sees) and reports install state,
# database version, maintenance, last cron start and the MUC store mapping.
STATE_SNIPPET = r"""
define('CLI_SCRIPT', true);
require getenv('MOODLE_PLATFORM_DIR') . '/config.php';
global $CFG;
$installed = !during_initial_install();
$muc = $CFG->dataroot . '/muc/config.php';
if (!empty($CFG->altcacheconfigpath)) {
    $alt = $CFG->altcacheconfigpath;
    $muc = is_dir($alt) ? rtrim($alt, '/') . '/cacheconfig.php' : $alt;
}
$configuration = null;
if (is_readable($muc)) { include($muc); }
$stores = [];
$mappings = [];
if (is_array($configuration)) {
    foreach ($configuration['stores'] ?? [] as $name => $store) { $stores[$name] = $store['plugin'] ?? null; }
    foreach ($configuration['modemappings'] ?? [] as $m) { $mappings[] = [(int) $m['mode'], $m['store']]; }
}
echo "\n" . getenv('MOODLE_PLATFORM_MARKER') . json_encode([
    'installed' => $installed,
    'db_version' => $installed ? get_config('core', 'version') : null,
    'db_release' => $installed ? get_config('core', 'release') : null,
    'maintenance' => is_file($CFG->dataroot . '/climaintenance.html')
        || ($installed && !empty(get_config('core', 'maintenance_enabled'))),
    'last_cron_start' => $installed ? get_config('tool_task', 'lastcronstart') : false,
    'stores' => $stores,
    'mappings' => $mappings,
    'wwwroot' => $CFG->wwwroot,
    'dataroot' => $CFG->dataroot,
]);
"""


def parse_marked_json(stdout):
    if MARKER not in stdout:
        raise MoodleConnectionError(f"no result from Moodle; output was: {stdout.strip()[-500:]}")
    return json.loads(stdout.rsplit(MARKER, 1)[1].strip())


def site_state(conn, now=None):
    """Facts about the site; raises MoodleConnectionError when Moodle cannot be asked."""
    code = conn.code_version()
    result = conn.php_code(STATE_SNIPPET, {"MOODLE_PLATFORM_MARKER": MARKER})
    if result.rc != 0 or MARKER not in result.stdout:
        raise MoodleConnectionError(
            f"Moodle's config.php could not be loaded (rc={result.rc}): {(result.stderr + result.stdout).strip()[-800:]}"
        )
    raw = parse_marked_json(result.stdout)
    by_mode = {name: [] for name in MODES.values()}
    for mode, store in raw["mappings"]:
        if mode in MODES:
            by_mode[MODES[mode]].append(store)
    last_cron = int(raw["last_cron_start"]) if raw["last_cron_start"] not in (False, None, "") else None
    now = int(time.time()) if now is None else now
    pending = None
    if raw["installed"]:
        up = conn.cli("upgrade.php", "--is-pending")
        if up.rc == 2:
            pending = True
        elif up.rc == 0:
            pending = False
        else:
            raise MoodleConnectionError(f"upgrade.php --is-pending failed (rc={up.rc}): {(up.stderr + up.stdout).strip()[-500:]}")
    application_plugins = [raw["stores"].get(name) for name in by_mode["application"]]
    return {
        "installed": raw["installed"],
        "code_version": float(code["version"]),
        "code_release": code["release"],
        "branch": code["branch"],
        "db_version": raw["db_version"] if raw["db_version"] is not False else None,
        "db_release": raw["db_release"] if raw["db_release"] is not False else None,
        "upgrade_pending": pending,
        "maintenance": bool(raw["maintenance"]),
        "last_cron_start": last_cron,
        "last_cron_age": (now - last_cron) if last_cron else None,
        "cache_stores": raw["stores"],
        "cache_mappings": by_mode,
        "application_cache_plugin": application_plugins[0] if application_plugins else "file (default)",
        "wwwroot": raw["wwwroot"],
        "dataroot": raw["dataroot"],
    }
