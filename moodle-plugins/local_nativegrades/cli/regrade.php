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
 * Regrade courses through the native engine with Moodle's side effects (local_nativegrades\local\regrader):
 *
 *   php local/nativegrades/cli/regrade.php --courseid=2 [--courseid=3 ...]
 *   php local/nativegrades/cli/regrade.php --category=ID   (every course in the course category and below)
 *   php local/nativegrades/cli/regrade.php --all
 *
 * By default only courses whose grades need an update are regraded (--force regrades every course
 * selected).  Courses the native gradebook does not model are regraded by Moodle's own
 * grade_regrade_final_grades(), and the reason is printed.  Progress is printed per course and a
 * summary at the end.  Exit status: 0, or 1 when a regrade reported errors.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

define('CLI_SCRIPT', true);
require(__DIR__ . '/../../../config.php');
require_once($CFG->libdir . '/clilib.php');

use local_nativegrades\local\engine;
use local_nativegrades\local\regrader;

[$options, $unrecognized] = cli_get_params(['courseid' => '', 'category' => 0, 'all' => false, 'force' => false,
    'engine' => '', 'help' => false], ['h' => 'help', 'c' => 'courseid', 'f' => 'force']);
$usage = "Usage: php local/nativegrades/cli/regrade.php (--courseid=ID[,ID...] | --category=ID | --all) [--force] " .
    "[--engine=native|php]\n";
if ($options['help']) {
    echo $usage;
    exit(0);
}
if ($unrecognized) {
    cli_error('unknown options: ' . implode(' ', $unrecognized) . "\n" . $usage, 2);
}
$selectors = (int)($options['courseid'] !== '') + (int)!empty($options['category']) + (int)!empty($options['all']);
if ($selectors !== 1) {
    cli_error("choose exactly one of --courseid, --category, --all\n" . $usage, 2);
}
if ($options['engine'] !== '' && !in_array($options['engine'], ['native', 'php'], true)) {
    cli_error("--engine must be native or php\n" . $usage, 2);
}
if ($options['courseid'] !== '') {
    $courseids = array_map('intval', explode(',', $options['courseid']));
} else if ($options['category']) {
    $cat = core_course_category::get((int)$options['category'], MUST_EXIST, true);
    $cats = array_merge([$cat->id], $cat->get_all_children_ids());
    [$insql, $params] = $DB->get_in_or_equal($cats);
    $courseids = $DB->get_fieldset_select('course', 'id', "category $insql", $params);
} else {
    $courseids = $DB->get_fieldset_select('course', 'id', 'id <> ?', [SITEID]);
}
sort($courseids);
$engine = $options['engine'] === '' ? null : $options['engine'];
cli_writeln(sprintf('regrading %d course(s) (engine: %s%s)', count($courseids), $engine ?? engine::name(),
    $options['force'] ? ', forced' : ', only courses that need it'));
$sum = ['native' => 0, 'moodle' => 0, 'current' => 0, 'changed' => 0, 'inserted' => 0, 'events' => 0, 'errors' => 0];
$t0 = microtime(true);
foreach ($courseids as $k => $courseid) {
    if (!$DB->record_exists('grade_items', ['courseid' => $courseid, 'itemtype' => 'course'])) {
        cli_writeln(sprintf('[%d/%d] course %d: no gradebook', $k + 1, count($courseids), $courseid));
        continue;
    }
    $r = regrader::regrade_course($courseid, (bool)$options['force'], $engine);
    $sum[$r['mode']]++;
    foreach (['changed', 'inserted', 'events'] as $f) {
        $sum[$f] += $r[$f];
    }
    $sum['errors'] += count($r['errors']);
    $line = sprintf('[%d/%d] course %d: ', $k + 1, count($courseids), $courseid);
    if ($r['mode'] === 'current') {
        cli_writeln($line . 'grades are current');
        continue;
    }
    if ($r['mode'] === 'moodle') {
        cli_writeln($line . "regraded by Moodle's own code (the native gradebook does not model: " .
            implode('; ', $r['reasons']) . ')');
    } else {
        cli_writeln($line . sprintf('regraded natively (%s): %d grades changed, %d created, %d items updated, %d events',
            $r['engine'], $r['changed'], $r['inserted'], $r['items'], $r['events']));
    }
    cli_writeln(sprintf('    %.3f s%s', $r['seconds'], $r['errors'] ? '; errors: ' . implode('; ', $r['errors']) : ''));
}
cli_writeln(sprintf('summary: %d course(s) regraded natively, %d by Moodle\'s own code, %d already current; ' .
    '%d grades changed, %d created, %d user_graded events, %d errors; %.2f s',
    $sum['native'], $sum['moodle'], $sum['current'], $sum['changed'], $sum['inserted'], $sum['events'], $sum['errors'],
    microtime(true) - $t0));
exit($sum['errors'] ? 1 : 0);
