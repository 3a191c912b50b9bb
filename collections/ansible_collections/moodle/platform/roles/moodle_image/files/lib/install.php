<?php
// moodle.platform: unattended, race-free first install, run as www-data in the web container:
//   php /usr/local/lib/moodle-platform/install.php --adminuser=admin --adminemail=... --fullname=... --shortname=...
// The admin password is read from the moodle_admin_password secret file (never on a command line);
// an exclusive lock in the shared dataroot makes a second, concurrent start wait and then find the
// site installed.  Prints "moodle-platform: already installed" or "moodle-platform: installed".

if (isset($_SERVER['REMOTE_ADDR'])) {
    exit(1);
}
$dirroot = '/var/www/moodle';
$lockfile = '/var/www/moodledata/.moodle-platform-install.lock';
$lock = fopen($lockfile, 'c');
if ($lock !== false && !flock($lock, LOCK_EX | LOCK_NB)) {
    echo "moodle-platform: waiting for the install lock (another start holds $lockfile)\n";
}
if ($lock === false || !flock($lock, LOCK_EX)) {
    fwrite(STDERR, "moodle-platform: cannot lock $lockfile\n");
    exit(1);
}
// A site installed once leaves this marker in its dataroot (backups and restores carry it along). An
// empty database next to it is not a new site: a restore is loading the database right now (the engine
// recreates it, then loads the dump), or the database was lost. Installing would write a fresh site into
// it, so refuse; a pod that retries finds the restored site installed.
$marker = '/var/www/moodledata/.moodle-platform-installed';
$installed = function () {
    // Asked in a child process, so that this one can still load Moodle's installer afterwards.
    exec('php ' . escapeshellarg(__DIR__ . '/is_installed.php') . ' 2>&1', $output, $rc);
    return [$rc, $output];
};
[$rc, $output] = $installed();
if ($rc === 0) {
    if (!is_file($marker)) {
        file_put_contents($marker, "installed (marker written " . gmdate('c') . ")\n");
    }
    echo "moodle-platform: already installed\n";
    exit(0);
}
if ($rc !== 3) {
    fwrite(STDERR, "moodle-platform: cannot tell whether Moodle is installed:\n" . implode("\n", $output) . "\n");
    exit(1);
}
if (is_file($marker)) {
    fwrite(STDERR, "moodle-platform: the database has no Moodle site, but moodledata belongs to an installed one"
        . " ($marker): not installing over it. Either a restore is loading the database (retry when it is done)"
        . " or the database was lost (restore a backup). To install a new site on this moodledata, delete $marker.\n");
    exit(1);
}
$password = '';
foreach (['/run/moodle-secrets/moodle_admin_password', '/run/secrets/moodle_admin_password'] as $file) {
    if (is_readable($file)) {
        $password = rtrim((string) file_get_contents($file), "\r\n");
        break;
    }
}
if ($password === '') {
    fwrite(STDERR, "moodle-platform: the moodle_admin_password secret is missing or empty\n");
    exit(1);
}
$_SERVER['argv'] = array_merge(['install_database.php'], array_slice($argv, 1),
    ['--agree-license', '--adminpass=' . $password]);
$_SERVER['argc'] = count($_SERVER['argv']);
$argv = $_SERVER['argv'];
$argc = $_SERVER['argc'];
unset($password);
// install_database.php ends with exit(): only a site that is installed afterwards counts (and gets its marker).
register_shutdown_function(function () use ($installed, $marker) {
    [$rc] = $installed();
    if ($rc === 0) {
        file_put_contents($marker, "installed " . gmdate('c') . "\n");
        echo "moodle-platform: installed\n";
    }
});
chdir($dirroot . '/admin/cli');
require($dirroot . '/admin/cli/install_database.php');
