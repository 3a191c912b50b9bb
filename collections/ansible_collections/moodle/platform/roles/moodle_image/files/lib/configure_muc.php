<?php
// moodle.platform: the MUC application store as code (no admin UI), for the site's cache topology.
// Idempotent; prints {"changed": bool, "store": name, "opcache_blacklisted": bool}.  Run as www-data in the web
// container:
//   shared (several web hosts): Redis as the application store
//   php /usr/local/lib/moodle-platform/configure_muc.php --name=redis --server=redis:6379 --prefix=mdl_ \
//       --password-file=/run/moodle-secrets/redis_password [--password-file=/run/secrets/redis_password] \
//       [--tls [--cafile=/etc/moodle-platform/ca/redis-ca.pem]]
//   local (one host; web and cron share moodledata): Moodle's default file store, the Redis store named
//   --name unmapped and deleted if this script had made it, the caches purged when the mapping changes
//   (what the file store holds dates from before the Redis mapping: stale)
//   php /usr/local/lib/moodle-platform/configure_muc.php --local --name=redis
// --password-file may repeat: the first readable, non-empty file wins (the entry point's www-data copy when the
// container started as root; the Compose secret itself, root:33 0440, when it runs as uid 33).
define('CLI_SCRIPT', true);
require('/var/www/moodle/config.php');
global $CFG;

/**
 * Whether PHP's OPcache blacklist (opcache.blacklist_filename, the same php.ini for the CLI and web in this image)
 * covers the MUC configuration file Moodle includes: then web reads a moved mapping on its next request instead of
 * after opcache.revalidate_freq. Entries are prefixes (OPcache's rule); an entry with a wildcard counts only when it
 * matches the whole path, so an unusual blacklist answers false (the caller then waits: the safe path).
 */
function moodle_platform_muc_blacklisted(): bool {
    // The file Moodle itself includes: core_cache\config::get_config_file_path() (protected; its own rule for
    // $CFG->altcacheconfigpath), called through reflection rather than copied.
    $path = (new ReflectionMethod('cache_config_writer', 'get_config_file_path'))->invoke(null);
    $pattern = (string) ini_get('opcache.blacklist_filename');
    foreach ($pattern === '' ? [] : (glob($pattern) ?: []) as $file) {
        foreach (file($file, FILE_IGNORE_NEW_LINES) ?: [] as $line) {
            $entry = trim($line);
            if ($entry === '' || $entry[0] === ';') {
                continue;
            }
            if (strpbrk($entry, '*?[') === false ? strpos($path, $entry) === 0 : fnmatch($entry, $path, FNM_PATHNAME)) {
                return true;
            }
        }
    }
    return false;
}

$opts = getopt('', ['name:', 'server:', 'prefix:', 'password-file:', 'tls', 'cafile:', 'local']);
if (isset($opts['local'])) {
    if (empty($opts['name'])) {
        fwrite(STDERR, "configure_muc.php: --name is required\n");
        exit(2);
    }
    $name = $opts['name'];
    $writer = cache_config_writer::instance();
    $stores = $writer->get_all_stores();
    $mappings = [];
    foreach ($writer->get_mode_mappings() as $mapping) {
        $mappings[(int) $mapping['mode']][] = $mapping['store'];
    }
    $application = $mappings[cache_store::MODE_APPLICATION] ?? [];
    $changed = false;
    if ($application !== ['default_application']) {
        // Only a mapping this script made is undone: an administrator's own stores are not ours to drop.
        if ($application !== [$name] || !isset($stores[$name]) || $stores[$name]['plugin'] !== 'redis') {
            fwrite(STDERR, "configure_muc.php: the application mode is mapped to '" . implode(', ', $application)
                . "', not to this deployment's Redis store '$name': leaving it (set the cache topology to shared, "
                . "or map the application mode back to default_application in the admin UI)\n");
            exit(1);
        }
        $mappings[cache_store::MODE_APPLICATION] = ['default_application'];
        $writer->set_mode_mappings($mappings);
        $changed = true;
    }
    if (isset($stores[$name]) && $stores[$name]['plugin'] === 'redis') {
        // Its configuration holds the Redis password; Moodle refuses if a definition is still mapped to it.
        $writer->delete_store_instance($name);
        $changed = true;
    }
    if ($changed) {
        cache_helper::purge_all();
    }
    echo json_encode(['changed' => $changed, 'store' => 'default_application',
        'opcache_blacklisted' => moodle_platform_muc_blacklisted()]) . "\n";
    exit(0);
}
foreach (['name', 'server', 'password-file'] as $required) {
    if (empty($opts[$required])) {
        fwrite(STDERR, "configure_muc.php: --$required is required\n");
        exit(2);
    }
}
$password = '';
foreach ((array) $opts['password-file'] as $file) {
    $password = rtrim((string) @file_get_contents($file), "\r\n");
    if ($password !== '') {
        break;
    }
}
if ($password === '') {
    fwrite(STDERR, "configure_muc.php: cannot read the Redis password file\n");
    exit(2);
}
$name = $opts['name'];
$configuration = [
    'server' => $opts['server'],
    'prefix' => $opts['prefix'] ?? '',
    'password' => $password,
    'serializer' => defined('Redis::SERIALIZER_IGBINARY') && extension_loaded('igbinary') ? Redis::SERIALIZER_IGBINARY : 1,
    'compressor' => 0,
    'connectiontimeout' => 3,
    'encryption' => isset($opts['tls']),
    'cafile' => isset($opts['tls']) ? (string) ($opts['cafile'] ?? '') : '',
    'clustermode' => false,
];
$writer = cache_config_writer::instance();
$stores = $writer->get_all_stores();
$changed = false;
if (!isset($stores[$name])) {
    $writer->add_store_instance($name, 'redis', $configuration);
    $changed = true;
} else if ($stores[$name]['plugin'] !== 'redis') {
    fwrite(STDERR, "configure_muc.php: a store named '$name' exists and is not a Redis store\n");
    exit(1);
} else if ($stores[$name]['configuration'] != $configuration) {
    $writer->edit_store_instance($name, 'redis', $configuration);
    $changed = true;
}
$mappings = [];
foreach ($writer->get_mode_mappings() as $mapping) {
    $mappings[(int) $mapping['mode']][] = $mapping['store'];
}
if (($mappings[cache_store::MODE_APPLICATION] ?? []) !== [$name]) {
    $mappings[cache_store::MODE_APPLICATION] = [$name];
    $writer->set_mode_mappings($mappings);
    $changed = true;
    // What Redis holds under this prefix may date from an earlier shared period: stale.
    cache_helper::purge_all();
}
echo json_encode(['changed' => $changed, 'store' => $name, 'opcache_blacklisted' => moodle_platform_muc_blacklisted()]) . "\n";
