<?php
// Moodle metrics exporter (moodle.platform monitoring role).
//
// Serves Prometheus metrics for what only Moodle knows: last cron run, failing scheduled/ad-hoc
// tasks, pending ad-hoc tasks, maintenance mode, users online, code version vs database version.
// It reads the database (MariaDB or PostgreSQL: MOODLE_METRICS_DB_TYPE; with its own least-privilege,
// SELECT-only DB user), the code's version.php and the dataroot's climaintenance.html - never the web UI.  Runs as a PHP built-in
// server router from the Moodle image:  php -S 0.0.0.0:9150 moodle_metrics.php
// A query that fails (table missing, grant missing) is reported by moodle_metrics_query_success 0
// and its metric is left out rather than reported as zero.

if (PHP_SAPI === 'cli-server' && parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) !== '/metrics') {
    http_response_code(404);
    echo "see /metrics\n";
    return true;
}

function env_or(string $name, string $default): string {
    $value = getenv($name);
    return ($value === false || $value === '') ? $default : $value;
}

$dbhost = env_or('MOODLE_METRICS_DB_HOST', 'db');
$dbname = env_or('MOODLE_METRICS_DB_NAME', 'moodle');
$dbuser = env_or('MOODLE_METRICS_DB_USER', 'moodle_metrics');
$prefix = env_or('MOODLE_METRICS_DB_PREFIX', 'mdl_');
$passwordfile = env_or('MOODLE_METRICS_DB_PASSWORD_FILE', '/run/moodle-secrets/monitoring_moodle_metrics_db_password');
$dirroot = env_or('MOODLE_METRICS_DIRROOT', '/var/www/moodle');
$dataroot = env_or('MOODLE_METRICS_DATAROOT', '/var/www/moodledata');
$onlinewindow = (int) env_or('MOODLE_METRICS_ONLINE_WINDOW', '300');

$lines = [];
function metric(array &$lines, string $name, string $help, string $type, array $samples): void {
    $lines[] = "# HELP $name $help";
    $lines[] = "# TYPE $name $type";
    foreach ($samples as [$labels, $value]) {
        $rendered = [];
        foreach ($labels as $k => $v) {
            $rendered[] = $k . '="' . addcslashes((string) $v, "\\\"\n") . '"';
        }
        $lines[] = $name . ($rendered ? '{' . implode(',', $rendered) . '}' : '') . ' ' . $value;
    }
}

$started = microtime(true);
$now = time();
$querystatus = [];
$db = null;
// MariaDB through mysqli, PostgreSQL through pgsql (both extensions are in the Moodle image); the queries
// below are plain SQL both databases run unchanged.
$dbtype = env_or('MOODLE_METRICS_DB_TYPE', 'mariadb');
$driver = $dbtype === 'pgsql' ? 'pg_connect' : 'mysqli_connect';
if (!in_array($dbtype, ['mariadb', 'pgsql'], true)) {
    fwrite(STDERR, "moodle_metrics: MOODLE_METRICS_DB_TYPE must be mariadb or pgsql, not '$dbtype'\n");
} else if (!function_exists($driver)) {
    fwrite(STDERR, "moodle_metrics: the " . ($dbtype === 'pgsql' ? 'pgsql' : 'mysqli') . " extension is missing\n");
} else if ($dbtype === 'mariadb') {
    mysqli_report(MYSQLI_REPORT_OFF);
}
$password = is_readable($passwordfile) ? trim((string) file_get_contents($passwordfile)) : '';
if ($password !== '' && in_array($dbtype, ['mariadb', 'pgsql'], true) && function_exists($driver)) {
    if ($dbtype === 'pgsql') {
        $quote = static fn(string $v): string => "'" . addcslashes($v, "'\\") . "'";
        $db = @pg_connect(sprintf('host=%s port=5432 dbname=%s user=%s password=%s connect_timeout=5',
            $quote($dbhost), $quote($dbname), $quote($dbuser), $quote($password)), PGSQL_CONNECT_FORCE_NEW);
    } else {
        $db = @mysqli_connect($dbhost, $dbuser, $password, $dbname);
    }
}
metric($lines, 'moodle_metrics_db_up', 'Whether the exporter could connect to the Moodle database.', 'gauge',
    [[[], $db ? 1 : 0]]);

function scalar($db, string $sql, string $key, array &$querystatus) {
    if (!$db) {
        $querystatus[$key] = 0;
        return null;
    }
    $pgsql = !($db instanceof mysqli);
    $result = $pgsql ? @pg_query($db, $sql) : @mysqli_query($db, $sql);
    if ($result === false) {
        $querystatus[$key] = 0;
        return null;
    }
    $row = $pgsql ? pg_fetch_row($result) : mysqli_fetch_row($result);
    $querystatus[$key] = 1;
    return ($row === null || $row === false) ? null : $row[0];
}

$p = preg_replace('/[^a-z0-9_]/i', '', $prefix);
$cron = scalar($db, "SELECT value FROM {$p}config_plugins WHERE plugin = 'tool_task' AND name = 'lastcronstart'", 'cron', $querystatus);
if ($querystatus['cron']) {
    // A site that never ran cron reports 0: the staleness alert fires for it too.
    metric($lines, 'moodle_cron_last_run_timestamp_seconds', 'Start of the last Moodle cron run (tool_task/lastcronstart).',
        'gauge', [[[], (int) $cron]]);
}
$failing = [];
$scheduled = scalar($db, "SELECT COUNT(*) FROM {$p}task_scheduled WHERE faildelay > 0 AND disabled = 0", 'tasks_scheduled', $querystatus);
if ($querystatus['tasks_scheduled']) {
    $failing[] = [['type' => 'scheduled'], (int) $scheduled];
}
$adhoc = scalar($db, "SELECT COUNT(*) FROM {$p}task_adhoc WHERE faildelay > 0", 'tasks_adhoc', $querystatus);
if ($querystatus['tasks_adhoc']) {
    $failing[] = [['type' => 'adhoc'], (int) $adhoc];
}
if ($failing) {
    metric($lines, 'moodle_tasks_failing', 'Tasks with a fail delay (they failed and are being retried).', 'gauge', $failing);
}
$pending = scalar($db, "SELECT COUNT(*) FROM {$p}task_adhoc WHERE nextruntime <= $now", 'adhoc_pending', $querystatus);
if ($querystatus['adhoc_pending']) {
    metric($lines, 'moodle_adhoc_tasks_pending', 'Ad-hoc tasks due to run now.', 'gauge', [[[], (int) $pending]]);
}
$since = $now - $onlinewindow;
$online = scalar($db, "SELECT COUNT(id) FROM {$p}user WHERE deleted = 0 AND lastaccess > $since", 'users_online', $querystatus);
if ($querystatus['users_online']) {
    metric($lines, 'moodle_users_online', "Users active in the last $onlinewindow seconds.", 'gauge', [[[], (int) $online]]);
}
$maintenanceconfig = scalar($db, "SELECT value FROM {$p}config WHERE name = 'maintenance_enabled'", 'maintenance', $querystatus);
$maintenance = is_file($dataroot . '/climaintenance.html') || (string) $maintenanceconfig === '1';
metric($lines, 'moodle_maintenance_mode', 'Whether the site is in maintenance mode (CLI file or setting).', 'gauge',
    [[[], $maintenance ? 1 : 0]]);

$dbversion = scalar($db, "SELECT value FROM {$p}config WHERE name = 'version'", 'db_version', $querystatus);
$codeversion = null;
$release = '';
if (is_readable($dirroot . '/version.php')) {
    $codeversion = (static function (string $file) {
        defined('MOODLE_INTERNAL') || define('MOODLE_INTERNAL', true);
        defined('MATURITY_STABLE') || define('MATURITY_STABLE', 200);
        $version = null;
        $release = '';
        include $file;
        return [$version, $release];
    })($dirroot . '/version.php');
    [$codeversion, $release] = $codeversion;
}
if ($codeversion !== null) {
    metric($lines, 'moodle_code_version', 'Moodle core version number in version.php.', 'gauge', [[[], sprintf('%.2f', $codeversion)]]);
}
if ($dbversion !== null && $dbversion !== false) {
    metric($lines, 'moodle_db_version', 'Moodle core version number recorded in the database.', 'gauge', [[[], sprintf('%.2f', (float) $dbversion)]]);
}
if ($codeversion !== null && $querystatus['db_version']) {
    metric($lines, 'moodle_upgrade_pending', 'Whether the code is newer than the database (core upgrade pending).', 'gauge',
        [[[], ((float) $codeversion > (float) $dbversion) ? 1 : 0]]);
    metric($lines, 'moodle_version_info', 'Moodle release and versions (always 1).', 'gauge',
        [[['release' => $release, 'code_version' => sprintf('%.2f', $codeversion), 'db_version' => sprintf('%.2f', (float) $dbversion)], 1]]);
}
$status = [];
foreach ($querystatus as $key => $ok) {
    $status[] = [['query' => $key], $ok];
}
metric($lines, 'moodle_metrics_query_success', 'Whether each query of the exporter succeeded.', 'gauge', $status);
metric($lines, 'moodle_metrics_scrape_duration_seconds', 'Time spent collecting these metrics.', 'gauge',
    [[[], sprintf('%.6f', microtime(true) - $started)]]);
if ($db instanceof mysqli) {
    mysqli_close($db);
} else if ($db) {
    pg_close($db);
}
if (PHP_SAPI === 'cli-server') {
    header('Content-Type: text/plain; version=0.0.4');
}
echo implode("\n", $lines), "\n";
return true;
