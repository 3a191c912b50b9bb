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

namespace local_nativegrades\local;

/**
 * The compiled course the what-if widget loads (gradebook-core/src/compiled.rs, which documents the
 * layout): a course's state after loading (formulas as postfix tokens, dependency order, Natural
 * weights and maxima) as a list of doubles.  Identical, byte for byte, to gradebook_core's
 * Course::to_compiled(); the parity tests check both that and the regrade of the course read back.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class compiled_course {
    /** Binary operators of formula tokens, in the compiled course's numbering. */
    const OPS = ['+', '-', '*', '/', '^', '>', '<', '<=', '>=', '==', '%'];
    /** Formula functions, in the compiled course's numbering (gradebook_core::func::Func). */
    const FUNCS = ['sin', 'sinh', 'asin', 'asinh', 'cos', 'cosh', 'acos', 'acosh', 'tan', 'tanh', 'atan',
        'atanh', 'sqrt', 'abs', 'log', 'exp', 'floor', 'ceil', 'average', 'max', 'min', 'mod', 'pi', 'power', 'round',
        'sum', 'if', 'and', 'or'];
    /** Item types, in the compiled course's numbering. */
    const ITEMTYPES = ['mod' => 0, 'manual' => 1, 'category' => 2, 'course' => 3];

    /**
     * The compiled course as a list of floats (see the class comment).
     *
     * @param course_model $course a course read by course_spec
     * @return float[]
     */
    public static function encode(course_model $course): array {
        $o = [2, count($course->items), count($course->categories), $course->maxcoef, $course->minmaxfromgrade ? 1 : 0];
        foreach ($course->items as $it) {
            $calculated = $it['formula'] !== null;
            if ($calculated) {
                $defaults = [$it['grademin'], $it['grademax']];
            } else if ($it['aggregate']) {
                $defaults = [0.0, 100.0];
            } else {
                $defaults = [$it['rawgrademin'], $it['rawgrademax']];
            }
            array_push($o, self::ITEMTYPES[$it['itemtype']], $it['gradetype'], $it['grademin'],
                $it['grademax'], $it['multfactor'], $it['plusfactor'], $it['aggregationcoef'], $it['aggregationcoef2'],
                $it['weightoverride'] ? 1 : 0, $it['rawgrademin'], $it['rawgrademax'], $it['givenmin'], $it['givenmax'],
                $it['parent'] ?? -1, $it['own'] ?? -1, $defaults[0], $defaults[1], $it['id']);
            if (!$calculated) {
                $o[] = -1;
                continue;
            }
            $o[] = count($it['fdeps']);
            array_push($o, ...$it['fdeps']);
            $o[] = count($it['formula']->tokens);
            foreach ($it['formula']->tokens as $t) {
                switch ($t[0]) {
                    case 'n':
                        array_push($o, 0, $t[1], 0);
                        break;
                    case 'v':
                        array_push($o, 1, $t[1], 0);
                        break;
                    case 'b':
                        array_push($o, 2, array_search($t[1], self::OPS, true), 0);
                        break;
                    case 'neg':
                        array_push($o, 3, 0, 0);
                        break;
                    default:
                        array_push($o, 4, array_search($t[1], self::FUNCS, true), $t[2]);
                }
            }
        }
        foreach ($course->categories as $c) {
            array_push($o, $c['parent'] ?? -1, $c['aggregation'], $c['aggregateonlygraded'] ? 1 : 0, $c['droplow'],
                $c['keephigh'], $c['stored']['aggregation'], $c['stored']['droplow'], $c['stored']['keephigh'],
                $c['stored']['canapply'] ? 1 : 0, $c['item'], $c['depth'], $c['canapply'] ? 1 : 0, $c['id'],
                count($c['children']), ...$c['children']);
            array_push($o, count($c['deps']), ...$c['deps']);
        }
        array_push($o, count($course->order), ...$course->order);
        return array_map('floatval', $o);
    }
}
