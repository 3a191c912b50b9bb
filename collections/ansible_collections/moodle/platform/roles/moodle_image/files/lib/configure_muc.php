<?php
// moodle.platform: Redis as the MUC application store, configured as code (no admin UI).
// Idempotent; prints {"changed": bool, "store": name}.  Run as www-data in the web container:
//   php /usr/local/lib/moodle-platform/configure_muc.php --name=redis --server=redis:6379 --prefix=mdl_ \
//       --password-file=/run/moodle-secrets/redis_password [--password-file=/run/secrets/redis_password] \
//       [--tls [--cafile=/etc/moodle-platform/ca/redis-ca.pem]]
// --password-file may repeat: the first readable, non-empty file wins (the entry point's www-data copy when the
// container started as root; the Compose secret itself, root:33 0440, when it runs as uid 33).
define('CLI_SCRIPT', true);
require('/var/www/moodle/config.php');
global $CFG;

$opts = getopt('', ['name:', 'server:', 'prefix:', 'password-file:', 'tls', 'cafile:']);
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
}
echo json_encode(['changed' => $changed, 'store' => $name]) . "\n";
