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

namespace local_nativegrades\external;

use core_external\external_api;
use core_external\external_function_parameters;
use core_external\external_multiple_structure;
use core_external\external_single_structure;
use core_external\external_value;
use local_nativegrades\local\course_loader;
use local_nativegrades\local\engine;
use local_nativegrades\local\php_engine;
use local_nativegrades\local\unsupported_course;

/**
 * Returns a user's grade structure for the what-if widget: the course description the engine
 * reads, the same course compiled for the widget's WebAssembly core, the user's stored cells and
 * flags, and the current final grades.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class get_user_gradebook extends external_api {
    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([
            'courseid' => new external_value(PARAM_INT, 'Course id'),
            'userid' => new external_value(PARAM_INT, 'User id (0: the current user)', VALUE_DEFAULT, 0),
        ]);
    }

    /**
     * Check access and load the gradebook of one user.
     *
     * @param int $courseid
     * @param int $userid
     * @return array [loader, userid, canseehidden]
     * @throws \moodle_exception unsupportedcourse when the engines do not model a setting the course uses
     */
    public static function load_for(int $courseid, int $userid): array {
        global $USER;
        $context = \context_course::instance($courseid);
        self::validate_context($context);
        $userid = $userid ?: (int)$USER->id;
        if ($userid != $USER->id) {
            require_capability('moodle/grade:viewall', $context);
        } else {
            require_capability('moodle/grade:view', $context);
        }
        $canseehidden = has_capability('moodle/grade:viewhidden', $context);
        try {
            $loader = course_loader::load($courseid, [$userid]);
        } catch (unsupported_course $e) {
            // The engines would compute this course wrongly: no numbers rather than wrong ones.
            throw new \moodle_exception('unsupportedcourse', 'local_nativegrades', '', implode('; ', $e->reasons));
        }
        return [$loader, $userid, $canseehidden];
    }

    /**
     * Execute.
     *
     * @param int $courseid
     * @param int $userid
     * @return array
     */
    public static function execute(int $courseid, int $userid = 0): array {
        ['courseid' => $courseid, 'userid' => $userid] = self::validate_parameters(self::execute_parameters(),
            ['courseid' => $courseid, 'userid' => $userid]);
        [$l, $userid, $canseehidden] = self::load_for($courseid, $userid);
        $n = count($l->items);
        $cells = $n ? array_values(unpack('e*', $l->grades)) : [];
        $flags = $n ? array_values(unpack('C*', $l->flags)) : [];
        $hiddenaffects = false;
        foreach ($l->items as $i => $it) {
            if (!$canseehidden && ($it->hidden || ($flags[$i] & 8))) {
                // A student does not see hidden grades: blank them (the totals shown by the widget
                // are then the "what if" totals without them).
                $hiddenaffects = $hiddenaffects || ($flags[$i] & 1);
                $cells[$i] = 0.0;
                $flags[$i] &= ~1;
            }
        }
        $result = engine::regrade($l->coursejson, pack('e*', ...$cells), pack('C*', ...$flags), 1);
        $final = engine::finals($result, $n)[0] ?? [];
        $items = [];
        foreach ($l->items as $i => $it) {
            $items[] = ['id' => (int)$it->id, 'name' => $it->itemtype === 'course' ? get_string('coursetotal', 'grades') :
                (string)($it->itemname ?? ''), 'itemtype' => $it->itemtype, 'editable' =>
                !in_array($it->itemtype, ['course', 'category'], true) && empty($it->calculation),
                'grademin' => (float)$it->grademin, 'grademax' => (float)$it->grademax,
                'cell' => ($flags[$i] & 1) ? $cells[$i] : null, 'flags' => $flags[$i], 'final' => $final[$i] ?? null];
        }
        // The widget's core reads the course pre-compiled (formulas as postfix tokens, Natural
        // weights computed), so the browser bundle needs no JSON reader or formula parser.
        $compiled = base64_encode(php_engine::compile($l->coursejson));
        return ['engine' => engine::name(), 'course' => $l->coursejson, 'compiled' => $compiled, 'userid' => $userid,
            'hiddenaffectstotals' => $hiddenaffects, 'items' => $items];
    }

    /**
     * Returns.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'engine' => new external_value(PARAM_ALPHA, 'Server engine: native or php'),
            'course' => new external_value(PARAM_RAW, 'Course description JSON read by the engine (docs/native.md)'),
            'compiled' => new external_value(PARAM_RAW, 'The course compiled for the widget: base64 of little-endian doubles'),
            'userid' => new external_value(PARAM_INT, 'User id'),
            'hiddenaffectstotals' => new external_value(PARAM_BOOL, 'Hidden grades were left out'),
            'items' => new external_multiple_structure(new external_single_structure([
                'id' => new external_value(PARAM_INT, 'Grade item id'),
                'name' => new external_value(PARAM_TEXT, 'Item name'),
                'itemtype' => new external_value(PARAM_ALPHA, 'Item type'),
                'editable' => new external_value(PARAM_BOOL, 'The student may type a hypothetical grade'),
                'grademin' => new external_value(PARAM_FLOAT, 'Minimum grade'),
                'grademax' => new external_value(PARAM_FLOAT, 'Maximum grade'),
                'cell' => new external_value(PARAM_FLOAT, 'Stored value (raw grade for activities)', VALUE_OPTIONAL),
                'flags' => new external_value(PARAM_INT, 'Cell flags (1 value, 2 excluded, 4 overridden, 8 hidden)'),
                'final' => new external_value(PARAM_FLOAT, 'Current final grade', VALUE_OPTIONAL),
            ])),
        ]);
    }
}
