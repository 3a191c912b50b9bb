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
 * PHP and database numeric behaviour the regrade depends on (gradebook-core/src/phpmath.rs): the
 * value a DECIMAL(10,5) column holds after PHP wrote a float, and PHP's (string) of a float.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class decimal {
    /**
     * Value a DECIMAL(10,5) column holds after PHP wrote $v (14 significant digits, then half up).
     *
     * @param float $v
     * @return float
     */
    public static function db_decimal5(float $v): float {
        if ($v == 0.0 || !is_finite($v)) {
            return is_finite($v) ? 0.0 : $v;
        }
        $s = sprintf('%.13e', abs($v));
        [$mant, $exp] = explode('e', $s);
        $digits = (int)str_replace('.', '', $mant);
        $shift = (int)$exp - 8;
        if ($shift >= 0) {
            $scaled = $digits * (10 ** min($shift, 4));
        } else {
            $k = -$shift;
            if ($k > 18) {
                $scaled = 0;
            } else {
                $p = 10 ** $k;
                $scaled = intdiv($digits + intdiv($p, 2), $p);
            }
        }
        if ($scaled == 0) {
            return 0.0; // A DECIMAL column has no negative zero.
        }
        $r = $scaled / 100000.0;
        return $v < 0 ? -$r : (float)$r;
    }

    /**
     * (float)(string)$v with precision=14.
     *
     * @param float $v
     * @return float
     */
    public static function string14(float $v): float {
        if ($v == 0.0 || !is_finite($v)) {
            return $v;
        }
        return (float)sprintf('%.13e', $v);
    }
}
