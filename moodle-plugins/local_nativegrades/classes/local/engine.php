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
 * The switch: regrade with the moodle_gradebook extension when it is loaded (and not disabled),
 * else with the pure-PHP engine.  Both have the same contract and give identical results.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class engine {
    /**
     * Is the native extension going to be used?
     *
     * @return bool
     */
    public static function native_available(): bool {
        if (!function_exists('moodle_gradebook_regrade')) {
            return false;
        }
        if (function_exists('get_config')) {
            return get_config('local_nativegrades', 'useextension') !== '0';
        }
        return true;
    }

    /**
     * Name of the engine in use.
     *
     * @return string 'native' or 'php'
     */
    public static function name(): string {
        return self::native_available() ? 'native' : 'php';
    }

    /**
     * Regrade every user (see docs/native.md for the packed format).
     *
     * @param string $coursejson course description
     * @param string $grades pack('e*') users x items
     * @param string $flags one byte per cell
     * @param int $nusers
     * @param string|null $force 'native' or 'php' to bypass the switch (CLI comparison)
     * @return array ['final', 'hasvalue', 'rawmin', 'rawmax'] packed strings
     */
    public static function regrade(string $coursejson, string $grades, string $flags, int $nusers,
            ?string $force = null): array {
        $which = $force ?? self::name();
        if ($which === 'native') {
            if (!function_exists('moodle_gradebook_regrade')) {
                throw new \coding_exception('the moodle_gradebook extension is not loaded');
            }
            return moodle_gradebook_regrade($coursejson, $grades, $flags, $nusers);
        }
        return php_engine::regrade($coursejson, $grades, $flags, $nusers);
    }

    /**
     * Regrade every user and return the final grades as arrays (the extension builds them
     * natively; no unpacking in PHP).  Same switch and input as regrade().
     *
     * @param string $coursejson course description
     * @param string $grades pack('e*') users x items
     * @param string $flags one byte per cell
     * @param int $nusers
     * @param string|null $force 'native' or 'php' to bypass the switch
     * @return array[] user index => item index => ?float (as finals() of regrade())
     */
    public static function regrade_rows(string $coursejson, string $grades, string $flags, int $nusers,
            ?string $force = null): array {
        $which = $force ?? self::name();
        if ($which === 'native') {
            if (!function_exists('moodle_gradebook_regrade_rows')) {
                throw new \coding_exception('the moodle_gradebook extension is not loaded');
            }
            return moodle_gradebook_regrade_rows($coursejson, $grades, $flags, $nusers);
        }
        return php_engine::regrade_rows($coursejson, $grades, $flags, $nusers);
    }

    /**
     * Unpack a regrade result into per-user arrays of final grades (null = empty).
     *
     * @param array $result from regrade()
     * @param int $nitems
     * @return array[] user index => item index => ?float
     */
    public static function finals(array $result, int $nitems): array {
        $final = $result['final'] === '' ? [] : array_values(unpack('e*', $result['final']));
        $out = [];
        foreach ($final as $k => $v) {
            $out[intdiv($k, $nitems)][$k % $nitems] = $result['hasvalue'][$k] === "\1" ? $v : null;
        }
        return $out;
    }
}
