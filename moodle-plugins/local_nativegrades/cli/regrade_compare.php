<?php
// This file is part of Moodle - https://moodle.org/
//
// Moodle is free software: you can redistribute it and/or modify
// it under the terms of the GNU General Public License as published by
// the Free Software Foundation, either version 3 of the License, or
// (at your option) any later version.
//
// Moodle is distributed in the hope that it will be useful,
// but WITHOUT ANY WARRANTY; without even the implied warranty of
// MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
// GNU General Public License for more details.
//
// You should have received a copy of the GNU General Public License
// along with Moodle.  If not, see <https://www.gnu.org/licenses/>.

/**
 * Regrade a course with the pure-PHP engine and with the moodle_gradebook extension, report every
 * difference and the timings, and optionally compare both with the final grades Moodle stored.
 *
 *   php local/nativegrades/cli/regrade_compare.php --courseid=2 [--against-stored]
 *
 * Exit status: 0 when the engines agree (and, with --against-stored, match Moodle), 1 otherwise,
 * 3 when the course uses a setting the engines do not model (listed; nothing is compared).
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

define('CLI_SCRIPT', true);
require(__DIR__ . '/../../../config.php');
require_once($CFG->libdir . '/clilib.php');

use local_nativegrades\local\course_loader;
use local_nativegrades\local\engine;
use local_nativegrades\local\unsupported_course;

[$options, $unrecognized] = cli_get_params(['courseid' => 0, 'against-stored' => false, 'help' => false], ['h' => 'help']);
if ($options['help'] || empty($options['courseid'])) {
    echo "Usage: php local/nativegrades/cli/regrade_compare.php --courseid=ID [--against-stored]\n";
    exit($options['help'] ? 0 : 2);
}
$courseid = (int)$options['courseid'];
$t0 = microtime(true);
try {
    $l = course_loader::load($courseid);
} catch (unsupported_course $e) {
    // Nothing to compare: the engines would regrade this course wrongly. Moodle's own
    // grade_regrade_final_grades() is the only correct regrade for it.
    cli_writeln("course {$courseid}: not regraded by the native gradebook, Moodle's own regrade applies:");
    foreach ($e->reasons as $reason) {
        cli_writeln("  - {$reason}");
    }
    exit(3);
}
$tload = microtime(true) - $t0;
$n = count($l->items);
$nu = count($l->userids);
cli_writeln("course {$courseid}: {$n} grade items, {$nu} users (loaded in " . sprintf('%.3f', $tload) . " s)");

$t0 = microtime(true);
$php = engine::regrade($l->coursejson, $l->grades, $l->flags, $nu, 'php');
$tphp = microtime(true) - $t0;
cli_writeln(sprintf('pure-PHP engine: %.4f s', $tphp));
$status = 0;
if (function_exists('moodle_gradebook_regrade')) {
    $t0 = microtime(true);
    $ext = engine::regrade($l->coursejson, $l->grades, $l->flags, $nu, 'native');
    $text = microtime(true) - $t0;
    cli_writeln(sprintf('extension:       %.4f s (%.1fx faster)', $text, $tphp / max($text, 1e-9)));
    $a = engine::finals($php, $n);
    $b = engine::finals($ext, $n);
    $diffs = 0;
    foreach ($a as $u => $row) {
        foreach ($row as $i => $v) {
            if ($v !== $b[$u][$i]) {
                $diffs++;
                cli_writeln("  DIFF user {$l->userids[$u]} item {$l->items[$i]->id}: php=" . var_export($v, true) .
                    ' ext=' . var_export($b[$u][$i], true));
            }
        }
    }
    cli_writeln($diffs ? "engines differ in {$diffs} grades" : 'engines agree on every grade');
    $status = $diffs ? 1 : 0;
} else {
    cli_writeln('extension: not loaded (only the pure-PHP engine was run)');
}
if ($options['against-stored']) {
    global $DB;
    $a = engine::finals($php, $n);
    $diffs = 0;
    foreach ($l->userids as $u => $userid) {
        foreach ($l->items as $i => $it) {
            $stored = $DB->get_field('grade_grades', 'finalgrade', ['itemid' => $it->id, 'userid' => $userid]);
            $stored = ($stored === false || $stored === null) ? null : (float)$stored;
            if ($stored !== ($a[$u][$i] ?? null)) {
                $diffs++;
                cli_writeln("  STORED user {$userid} item {$it->id}: moodle=" . var_export($stored, true) .
                    ' engine=' . var_export($a[$u][$i] ?? null, true));
            }
        }
    }
    cli_writeln($diffs ? "{$diffs} grades differ from what Moodle stored" : 'engine matches every grade Moodle stored');
    $status = $status || $diffs ? 1 : 0;
}
exit($status);
