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
 * The course model of the pure-PHP engine (gradebook-core/src/model.rs): categories and grade items
 * as arrays, the computed items' order and the settings the regrade models.  Data and the queries
 * on it only: course_spec reads it from the course description, regrade computes with it,
 * compiled_course writes it for the widget.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class course_model {
    /** Flag bits of the grade matrix (see docs/native.md). */
    const HAS_VALUE = 1;
    /** Excluded from aggregation. */
    const EXCLUDED = 2;
    /** Overridden or locked: the value is final. */
    const OVERRIDDEN = 4;
    /** Hidden: no effect on the regrade. */
    const HIDDEN = 8;

    const SUM = 13;
    const AGGREGATIONS = [0, 2, 4, 6, 8, 10, 11, 12, 13];

    /** @var array[] items: id, idnumber, itemtype, gradetype, grademin, grademax, ... */
    public array $items = [];
    /** @var array[] categories */
    public array $categories = [];
    /** @var int[] computed items in dependency order */
    public array $order = [];
    /** @var float factor on a value grade's maximum in bounded_grade(): gradeoverhundredprocentmax with
     * unlimitedgrades on, else 1 */
    public float $maxcoef = 1.0;
    /** @var bool minmaxtouse = 2: every grade is aggregated with its row's raw range (the item's raw range) */
    public bool $minmaxfromgrade = false;

    /**
     * What grade_item::depends_on() returns.
     *
     * @param int $i item index
     * @return int[] item indices
     */
    public function depends_on(int $i): array {
        $it = $this->items[$i];
        if ($it['formula'] !== null) {
            return $it['fdeps'];
        }
        if ($it['own'] !== null) {
            return $this->categories[$it['own']]['deps'];
        }
        return [];
    }

    /**
     * Whether the item is computed (a category/course total or a calculated item).
     *
     * @param int $i item index
     * @return bool
     */
    public function needs_compute(int $i): bool {
        return $this->items[$i]['formula'] !== null || $this->items[$i]['aggregate'];
    }

    /**
     * The item as error messages name it.
     *
     * @param int $i item index
     * @return string
     */
    public function describe(int $i): string {
        $it = $this->items[$i];
        return $it['idnumber'] === '' ? "item {$it['id']}" : "item {$it['id']} [[{$it['idnumber']}]]";
    }
}
