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
use local_nativegrades\local\engine;

/**
 * Totals for hypothetical grades, computed on the server with the same engine: the widget's
 * path when the browser has no WebAssembly.  Nothing is saved.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class whatif extends external_api {
    /**
     * Parameters.
     *
     * @return external_function_parameters
     */
    public static function execute_parameters(): external_function_parameters {
        return new external_function_parameters([
            'courseid' => new external_value(PARAM_INT, 'Course id'),
            'userid' => new external_value(PARAM_INT, 'User id (0: the current user)', VALUE_DEFAULT, 0),
            'cells' => new external_multiple_structure(new external_value(PARAM_FLOAT, 'Cell value (item order)')),
            'flags' => new external_multiple_structure(new external_value(PARAM_INT, 'Cell flags (item order)')),
        ]);
    }

    /**
     * Execute.
     *
     * @param int $courseid
     * @param int $userid
     * @param float[] $cells
     * @param int[] $flags
     * @return array
     */
    public static function execute(int $courseid, int $userid, array $cells, array $flags): array {
        $p = self::validate_parameters(self::execute_parameters(),
            ['courseid' => $courseid, 'userid' => $userid, 'cells' => $cells, 'flags' => $flags]);
        [$l] = get_user_gradebook::load_for($p['courseid'], $p['userid']);
        $n = count($l->items);
        if (count($p['cells']) != $n || count($p['flags']) != $n) {
            throw new \invalid_parameter_exception("expected {$n} cells and flags");
        }
        try {
            $r = engine::regrade($l->coursejson, pack('e*', ...array_map('floatval', $p['cells'])),
                pack('C*', ...$p['flags']), 1);
        } catch (\InvalidArgumentException $e) {
            throw new \invalid_parameter_exception($e->getMessage());
        }
        $final = engine::finals($r, $n)[0] ?? [];
        return ['engine' => engine::name(), 'final' => array_map(fn($v) => ['value' => $v], $final)];
    }

    /**
     * Returns.
     *
     * @return external_single_structure
     */
    public static function execute_returns(): external_single_structure {
        return new external_single_structure([
            'engine' => new external_value(PARAM_ALPHA, 'Server engine: native or php'),
            'final' => new external_multiple_structure(new external_single_structure([
                'value' => new external_value(PARAM_FLOAT, 'Final grade (null: empty)', VALUE_OPTIONAL),
            ])),
        ]);
    }
}
