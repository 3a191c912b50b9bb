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
 * Pure-PHP whole-course regrade with the same contract as the moodle_gradebook extension.
 *
 * It follows Moodle 4.5's grade_regrade_final_grades() / grade_category::aggregate_grades() /
 * aggregate_values_and_adjust_bounds() / apply_limit_rules() / grade_item::compute() step by
 * step, on arrays instead of database rows, and applies the DECIMAL(10,5) rounding the database
 * performs between steps.  Used when the extension is not loaded; results are identical.
 *
 * This class is the facade its callers use (engine, regrader, web services, tests); the work is
 * done by course_spec (reading the course description), regrade (the regrade itself, and Natural
 * weights and maxima at load), decimal (DECIMAL(10,5) and 14-digit helpers) and compiled_course
 * (the widget's input) - the same split as gradebook-core's modules.  A php_engine is the course
 * model as read (course_model) plus a regrade of it with an optional usage trace.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class php_engine extends course_model {
    /**
     * @var array|null off (null), or what aggregate_grades() did for the last user, per category index:
     *     ['novalue' => [item index => 0], 'dropped' => [...], 'extra' => [...], 'weights' => [item index => float]]
     *     (grade_category::set_usedinaggregation()'s input; used by the regrader's write-back)
     */
    public ?array $usage = null;
    /**
     * @var array|null usage only: per category index, the order in which the user's grades of its
     *     children reach aggregate_grades() (the database's row order; ties sort in it)
     */
    public ?array $usageorder = null;
    /** @var regrade|null the regrade of this course (kept between users: the usage trace carries state) */
    private ?regrade $userregrade = null;

    /**
     * Value a DECIMAL(10,5) column holds after PHP wrote $v (decimal::db_decimal5()).
     *
     * @param float $v
     * @return float
     */
    public static function db_decimal5(float $v): float {
        return decimal::db_decimal5($v);
    }

    /**
     * (float)(string)$v with precision=14 (decimal::string14()).
     *
     * @param float $v
     * @return float
     */
    public static function string14(float $v): float {
        return decimal::string14($v);
    }

    /**
     * Read a course description (JSON text); InvalidArgumentException naming the problem if it is bad.
     *
     * @param string $json
     * @return php_engine
     */
    public static function from_json(string $json): php_engine {
        $e = new php_engine();
        course_spec::read($json, $e);
        return $e;
    }

    /**
     * Regrade one user (regrade::regrade_user()), with the usage trace when $usage is not null.
     *
     * @param float[] $cells values in item order
     * @param int[] $flags flag bytes in item order
     * @return array [final (float|null)[], rawmin float[], rawmax float[]]
     */
    public function regrade_user(array $cells, array $flags): array {
        $this->userregrade ??= new regrade($this);
        $this->userregrade->usage = $this->usage;
        $this->userregrade->usageorder = $this->usageorder;
        $out = $this->userregrade->regrade_user($cells, $flags);
        $this->usage = $this->userregrade->usage;
        return $out;
    }

    /**
     * The compiled course the what-if widget loads (compiled_course), as pack('e*').
     *
     * @param string $coursejson course description
     * @return string pack('e*', ...)
     */
    public static function compile(string $coursejson): string {
        return pack('e*', ...compiled_course::encode(self::from_json($coursejson)));
    }

    /**
     * The compiled course as a list of floats (see compile()).
     *
     * @return float[]
     */
    public function compiled(): array {
        return compiled_course::encode($this);
    }

    /**
     * Regrade every user; same contract as moodle_gradebook_regrade().
     *
     * @param string $coursejson
     * @param string $grades pack('e*', ...) users x items
     * @param string $flags one byte per cell
     * @param int $nusers
     * @return array ['final' => e*, 'hasvalue' => bytes, 'rawmin' => e*, 'rawmax' => e*]
     */
    public static function regrade(string $coursejson, string $grades, string $flags, int $nusers): array {
        [$e, $cells, $fl, $n] = self::prepare('moodle_gradebook_regrade', $coursejson, $grades, $flags, $nusers);
        $r = new regrade($e);
        $final = [];
        $has = '';
        $rmin = [];
        $rmax = [];
        for ($u = 0; $u < $nusers; $u++) {
            [$f, $mi, $ma] = $r->regrade_user(array_slice($cells, $u * $n, $n), array_slice($fl, $u * $n, $n));
            foreach ($f as $g) {
                $final[] = $g ?? 0.0;
                $has .= $g === null ? "\0" : "\1";
            }
            array_push($rmin, ...$mi);
            array_push($rmax, ...$ma);
        }
        return [
            'final' => pack('e*', ...$final),
            'hasvalue' => $has,
            'rawmin' => pack('e*', ...$rmin),
            'rawmax' => pack('e*', ...$rmax),
        ];
    }

    /**
     * Regrade every user and return the final grades as arrays; same contract as
     * moodle_gradebook_regrade_rows().
     *
     * @param string $coursejson
     * @param string $grades pack('e*', ...) users x items
     * @param string $flags one byte per cell
     * @param int $nusers
     * @return array[] user index => item index => ?float
     */
    public static function regrade_rows(string $coursejson, string $grades, string $flags, int $nusers): array {
        [$e, $cells, $fl, $n] = self::prepare('moodle_gradebook_regrade_rows', $coursejson, $grades, $flags, $nusers);
        $r = new regrade($e);
        $rows = [];
        for ($u = 0; $u < $nusers; $u++) {
            $rows[] = $r->regrade_user(array_slice($cells, $u * $n, $n), array_slice($fl, $u * $n, $n))[0];
        }
        return $rows;
    }

    /**
     * Validate the input of a regrade (nothing is computed before this passed).
     *
     * @param string $func name used in error messages
     * @param string $coursejson
     * @param string $grades
     * @param string $flags
     * @param int $nusers
     * @return array [engine, cells, flags, items per user]
     */
    private static function prepare(string $func, string $coursejson, string $grades, string $flags, int $nusers): array {
        if ($nusers < 0) {
            self::invalid("{$func}: nusers must not be negative, got {$nusers}");
        }
        try {
            $e = self::from_json($coursejson);
        } catch (\InvalidArgumentException $ex) {
            throw new \InvalidArgumentException("{$func}: " . $ex->getMessage());
        }
        $n = count($e->items);
        $expected = $nusers * $n;
        if (strlen($grades) % 8 != 0) {
            self::invalid("{$func}: grades: " . strlen($grades) .
                " bytes is not a whole number of pack('e*') doubles");
        }
        if (strlen($grades) / 8 != $expected) {
            $got = strlen($grades) / 8;
            self::invalid("{$func}: grades: expected {$expected} values ({$nusers} users x {$n} items), got {$got}");
        }
        if (strlen($flags) != $expected) {
            self::invalid("{$func}: flags: expected {$expected} bytes ({$nusers} users x {$n} items), got " .
                strlen($flags));
        }
        $cells = $expected ? array_values(unpack('e*', $grades)) : [];
        $fl = $expected ? array_values(unpack('C*', $flags)) : [];
        foreach ($fl as $k => $f) {
            $u = intdiv($k, max($n, 1));
            $it = $k % max($n, 1);
            if ($f & ~15) {
                self::invalid(sprintf('%s: flags: unknown bits 0x%02x at user %d item %d', $func, $f, $u, $it));
            }
            if (($f & self::HAS_VALUE) && !is_finite($cells[$k])) {
                $shown = is_nan($cells[$k]) ? 'NaN' : ($cells[$k] > 0 ? 'inf' : '-inf');
                self::invalid("{$func}: grades: value at user {$u} item {$it} is not a finite number ({$shown})");
            }
        }
        return [$e, $cells, $fl, $n];
    }

    /**
     * Bad input: the exception every engine throws.
     *
     * @param string $msg
     */
    private static function invalid(string $msg): void {
        throw new \InvalidArgumentException($msg);
    }
}
