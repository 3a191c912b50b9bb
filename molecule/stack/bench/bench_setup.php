<?php
// make bench-stack: set-up steps run by bench_stack.py as www-data inside a web container of the stack
// (copied to /tmp there, never part of the image).  Each prints one JSON line.
//   php bench_setup.php course                    {"course": id|null} of the course `bench`
//   php bench_setup.php students --password-file=F  sets the password of every student of `bench`
//                                                 (Moodle's generator users) from F; {"course", "discussion", "users"}
//   php -d apc.enable_cli=1 bench_setup.php muc-apcu
//                                                 in web-apcu: an APCu store for the application caches
//                                                 in that service's own MUC file (MOODLE_MUC_CONFIG=apcu)
define('CLI_SCRIPT', true);
require('/var/www/moodle/config.php');
require_once($CFG->dirroot . '/user/lib.php');
global $CFG, $DB;

const BENCH_SHORTNAME = 'bench';
$action = $argv[1] ?? '';
// getopt() stops at the action (a non-option), so the options are read by hand.
$passwordfile = '';
foreach (array_slice($argv, 2) as $arg) {
    if (strpos($arg, '--password-file=') === 0) {
        $passwordfile = substr($arg, strlen('--password-file='));
    }
}

function bench_fail(string $message): void {
    fwrite(STDERR, "bench_setup.php: $message\n");
    exit(1);
}

if ($action === 'course') {
    $id = $DB->get_field('course', 'id', ['shortname' => BENCH_SHORTNAME]);
    echo json_encode(['course' => $id === false ? null : (int) $id]) . "\n";
} else if ($action === 'students') {
    $password = $passwordfile !== '' && is_readable($passwordfile) ? rtrim((string) file_get_contents($passwordfile), "\r\n") : '';
    if (strlen($password) < 12) {
        bench_fail('--password-file must name a readable file with a password of 12 characters or more');
    }
    $course = $DB->get_record('course', ['shortname' => BENCH_SHORTNAME]);
    if (!$course) {
        bench_fail("no course '" . BENCH_SHORTNAME . "' (maketestcourse.php makes it)");
    }
    $context = context_course::instance($course->id);
    $studentrole = $DB->get_field('role', 'id', ['shortname' => 'student'], MUST_EXIST);
    $students = get_role_users($studentrole, $context, false, 'u.id, u.username, u.auth, u.password', 'u.username');
    $students = array_filter($students, fn($u) => strpos($u->username, 'tool_generator_') === 0);
    if (!$students) {
        bench_fail('the course has no generator students');
    }
    foreach ($students as $user) {
        if ($user->auth !== 'manual') {
            bench_fail("user {$user->username} does not use manual authentication");
        }
        if (!validate_internal_user_password($user, $password)) {
            update_internal_user_password($user, $password);
        }
        unset_user_preference('auth_forcepasswordchange', $user->id);
    }
    $discussion = $DB->get_field_sql(
        'SELECT MIN(d.id) FROM {forum_discussions} d JOIN {forum} f ON f.id = d.forum WHERE f.course = ?',
        [$course->id]
    );
    if (!$discussion) {
        bench_fail('the course has no forum discussion');
    }
    echo json_encode([
        'course' => (int) $course->id,
        'discussion' => (int) $discussion,
        'users' => array_values(array_map(fn($u) => $u->username, $students)),
    ]) . "\n";
} else if ($action === 'muc-apcu') {
    if (getenv('MOODLE_MUC_CONFIG') !== 'apcu') {
        bench_fail('run this in the web-apcu service (MOODLE_MUC_CONFIG=apcu), not in a service with a shared MUC file');
    }
    $writer = cache_config_writer::instance();
    $changed = false;
    if (!isset($writer->get_all_stores()['apcu'])) {
        $writer->add_store_instance('apcu', 'apcu', ['prefix' => 'mdl_']);
        $changed = true;
    }
    $mappings = [];
    foreach ($writer->get_mode_mappings() as $mapping) {
        $mappings[(int) $mapping['mode']][] = $mapping['store'];
    }
    if (($mappings[cache_store::MODE_APPLICATION] ?? []) !== ['apcu']) {
        $mappings[cache_store::MODE_APPLICATION] = ['apcu'];
        $writer->set_mode_mappings($mappings);
        $changed = true;
    }
    echo json_encode(['changed' => $changed, 'store' => 'apcu']) . "\n";
} else {
    bench_fail('usage: bench_setup.php course | students --password-file=FILE | muc-apcu');
}
