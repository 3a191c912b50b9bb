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
 * Where a native regrade's time goes (regrader::regrade_course()'s 'profile', printed by
 * `make bench-native`): wall seconds per phase, and of them the database's share (queries and
 * their time, from $DB->perf_get_queries()/perf_get_queries_time() where the driver counts them).
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class profile {
    /** @var array phase => [seconds, queries, query seconds] */
    private array $phases = [];
    /** @var float */
    private float $t;
    /** @var int */
    private int $q;
    /** @var float */
    private float $qt;

    /**
     * Start counting now.
     */
    public function __construct() {
        [$this->t, $this->q, $this->qt] = self::now();
    }

    /**
     * The clock and the database's counters.
     *
     * @return array [seconds, queries, query seconds]
     */
    private static function now(): array {
        global $DB;
        $counts = isset($DB) && method_exists($DB, 'perf_get_queries');
        return [microtime(true), $counts ? (int)$DB->perf_get_queries() : 0,
            $counts ? (float)$DB->perf_get_queries_time() : 0.0];
    }

    /**
     * Charge the time since the previous lap to a phase (phases add up).
     *
     * @param string $phase
     */
    public function lap(string $phase): void {
        [$t, $q, $qt] = self::now();
        $p = $this->phases[$phase] ?? [0.0, 0, 0.0];
        $this->phases[$phase] = [$p[0] + $t - $this->t, $p[1] + $q - $this->q, $p[2] + $qt - $this->qt];
        [$this->t, $this->q, $this->qt] = [$t, $q, $qt];
    }

    /**
     * A figure measured inside a phase (its share of the phase's seconds), reported as its own line.
     *
     * @param string $what
     * @param float $seconds
     */
    public function note(string $what, float $seconds): void {
        $this->phases[$what] = [($this->phases[$what][0] ?? 0.0) + $seconds, 0, 0.0];
    }

    /**
     * The phases in the order they first ran.
     *
     * @return array[] phase => ['seconds' => float, 'queries' => int, 'dbseconds' => float]
     */
    public function report(): array {
        return array_map(fn($p) => ['seconds' => round($p[0], 4), 'queries' => $p[1], 'dbseconds' => round($p[2], 4)],
            $this->phases);
    }
}
