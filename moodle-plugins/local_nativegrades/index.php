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
 * The what-if calculator page of a course (linked from the course navigation).
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

require(__DIR__ . '/../../config.php');

$courseid = required_param('id', PARAM_INT);
$course = get_course($courseid);
require_login($course);
$context = context_course::instance($course->id);
require_capability('moodle/grade:view', $context);

$PAGE->set_url(new moodle_url('/local/nativegrades/index.php', ['id' => $course->id]));
$PAGE->set_title(get_string('whatif', 'local_nativegrades'));
$PAGE->set_heading(format_string($course->fullname));
try {
    // The widget's engines would compute a course that uses an unmodelled setting wrongly: say so instead.
    \local_nativegrades\local\course_loader::load($course->id, [(int)$USER->id]);
    $refusal = null;
} catch (\local_nativegrades\local\unsupported_course $e) {
    $refusal = get_string('unsupportedcourse', 'local_nativegrades', implode('; ', $e->reasons));
}
if ($refusal !== null) {
    echo $OUTPUT->header();
    echo $OUTPUT->heading(get_string('whatif', 'local_nativegrades'));
    echo $OUTPUT->notification($refusal, \core\output\notification::NOTIFY_WARNING);
    echo $OUTPUT->footer();
    exit;
}
$PAGE->requires->js_call_amd('local_nativegrades/whatif', 'init',
    ['#local-nativegrades-whatif', (int)$course->id, 0, (new moodle_url('/local/nativegrades/wasm'))->out(false)]);

echo $OUTPUT->header();
echo $OUTPUT->heading(get_string('whatif', 'local_nativegrades'));
echo html_writer::tag('p', get_string('whatif_help', 'local_nativegrades'));
echo html_writer::div('', '', ['id' => 'local-nativegrades-whatif']);
echo $OUTPUT->footer();
