<?php
// Write-back equality in CI (test_writeback.py), inside the golden image's PHP 8.2 + MariaDB: each
// course of tests/native/golden/cases_writeback.json is loaded as Moodle's harness found it before
// its regrade (rows with their ids, site settings), regraded by local_nativegrades' regrader
// (regrader::regrade_course(), PHP engine and extension in turn, the course reloaded between them)
// on top of the Moodle API stand-in, and the tables it leaves (grade_grades, grade_items, both
// history tables, the logged events; timestamps and row ids excepted) are compared with what
// Moodle 4.5.6's own grade_regrade_final_grades() left (writeback.php's wb_record()/wb_diff()).
//   php run.php <fixture.json> <plugin dir> <golden dir> <socket> <out.json>
[$fixture, $plugin, $golden, $socket, $outfile] = array_slice($argv, 1, 5);
require(__DIR__ . '/moodle_standin.php');
require(__DIR__ . '/moodle_standin_events.php');
$root = sys_get_temp_dir() . '/standin-root';
@mkdir("$root/lib", 0777, true);
@mkdir("$root/course", 0777, true);
file_put_contents("$root/lib/gradelib.php", "<?php\n// stand-in: the grade classes come from moodle_standin.php\n");
file_put_contents("$root/course/lib.php", "<?php\n// stand-in\n");
// tests/native/plugin_autoload.php (mounted at /autoload.php by test_writeback.py).
require(getenv('NATIVEGRADES_AUTOLOAD') ?: __DIR__ . '/../plugin_autoload.php');
local_nativegrades_autoload($plugin);
require("$golden/writeback.php");

$DB = new standin_database($socket, 'moodle');
$cases = json_decode(file_get_contents($fixture), true)['cases'];
$tables = ['grade_categories', 'grade_items', 'grade_settings', 'grade_grades'];

function load_course(array $case): void {
    global $DB, $tables;
    $cid = $case['courseid'];
    $DB->execute('DELETE gg FROM {grade_grades} gg JOIN {grade_items} gi ON gi.id = gg.itemid WHERE gi.courseid = ?', [$cid]);
    foreach (['grade_items', 'grade_categories', 'grade_settings'] as $t) {
        $DB->execute("DELETE FROM {{$t}} WHERE courseid = ?", [$cid]);
    }
    foreach ($tables as $t) {
        foreach ($case['start'][$t] as $row) {
            $DB->execute("INSERT INTO {{$t}} (" . implode(',', array_keys($row)) . ') VALUES (' .
                implode(',', array_fill(0, count($row), '?')) . ')', array_values($row));
        }
    }
}

// Every course first (Moodle's database held them all when it regraded each one).
foreach ($cases as $case) {
    load_course($case);
}
$report = [];
foreach ($cases as $n => $case) {
    $cid = $case['courseid'];
    $CFG = (object)($case['start']['config'] + ['dirroot' => $root, 'libdir' => "$root/lib"]);
    $USER = (object)['id' => $case['start']['userid']];
    $STANDIN_PLUGINCFG = $case['start']['plugin'];
    $STANDIN_RESCALE = $case['start']['rescale'];
    $r = ['courseid' => $cid];
    foreach (['php', 'native'] as $k => $engine) {
        if ($k > 0) {
            load_course($case);
        }
        $s = ['gh' => wb_max('grade_grades_history'), 'ih' => wb_max('grade_items_history'),
            'log' => wb_max('logstore_standard_log')];
        $GLOBALS['STANDIN_TRACE'] = [];
        try {
            $res = \local_nativegrades\local\regrader::regrade_course($cid, false, $engine);
            $trace = $GLOBALS['STANDIN_TRACE'];
            $cleared = array_search('clean_record_set', $trace, true);
            $r[$engine] = ['mode' => $res['mode'], 'reasons' => $res['reasons'], 'changed' => $res['changed'],
                'events' => $res['events'], 'diff' => wb_diff($case['moodle'], wb_record($cid, $s)),
                // user_graded events triggered inside the transaction / before the grade caches were cleared.
                'events_in_transaction' => count(array_keys($trace, 'user_graded in transaction', true)),
                'events_before_cache_clear' => count(array_filter(array_slice($trace, 0, $cleared === false ? null : $cleared),
                    fn($t) => str_starts_with($t, 'user_graded')))];
        } catch (Throwable $e) {
            $r[$engine] = ['mode' => 'error', 'reasons' => [get_class($e) . ': ' . $e->getMessage() . ' @ ' .
                basename($e->getFile()) . ':' . $e->getLine()], 'changed' => 0, 'events' => 0, 'diff' => []];
        }
    }
    $report[] = $r;
    if (($n + 1) % 20 === 0) {
        fwrite(STDERR, "writeback: " . ($n + 1) . " of " . count($cases) . " courses\n");
    }
}
file_put_contents($outfile, json_encode($report, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
