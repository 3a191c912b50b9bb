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
 * The regrade of a loaded course (gradebook-core/src/regrade.rs): Moodle 4.5's
 * grade_regrade_final_grades() / grade_category::aggregate_grades() / aggregate_values_and_adjust_bounds()
 * / apply_limit_rules() / grade_item::compute() step by step on arrays, with the DECIMAL(10,5)
 * rounding the database applies between steps; and pre_regrade_final_grades(), which course_spec
 * applies once when it reads a course.  One instance regrades the users of one course in turn
 * (regrade_user()), optionally with the usage trace the regrader's write-back needs.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class regrade {
    /** @var array[] the course's items (course_model::$items) */
    private array $items;
    /** @var array[] the course's categories */
    private array $categories;
    /** @var int[] computed items in dependency order */
    private array $order;
    /** @var float factor on a value grade's maximum (course_model::$maxcoef) */
    private float $maxcoef;
    /** @var bool minmaxtouse = 2 (course_model::$minmaxfromgrade) */
    private bool $minmaxfromgrade;
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
    /** @var array per category index: the total's grademin/max as the previous user's aggregation left them */
    private array $usagebounds = [];
    /** @var array Natural's per-user weights and maximum of the last aggregation (usage only) */
    private array $naturallast = [];

    /**
     * The regrade of $course as it is now (its arrays are copied: PHP arrays are values).
     *
     * @param course_model $course a course read by course_spec
     */
    public function __construct(course_model $course) {
        $this->items = $course->items;
        $this->categories = $course->categories;
        $this->order = $course->order;
        $this->maxcoef = $course->maxcoef;
        $this->minmaxfromgrade = $course->minmaxfromgrade;
    }

    /**
     * grade_category::pre_regrade_final_grades() for every category, deepest first: Natural weights
     * (auto_update_weights) then maxima (auto_update_max), each stored as the database holds it.
     *
     * @param course_model $course the course as read (changed in place)
     */
    public static function pre_regrade(course_model $course): void {
        $cats = array_keys($course->categories);
        usort($cats, function ($a, $b) use ($course) {
            return [$course->categories[$b]['depth'], $course->categories[$a]['id']]
                <=> [$course->categories[$a]['depth'], $course->categories[$b]['id']];
        });
        foreach ($cats as $c) {
            if ($course->categories[$c]['stored']['aggregation'] == course_model::SUM) {
                self::auto_update_weights($course, $c);
                $course->categories[$c]['stored']['canapply'] =
                    self::can_apply_limit_rules($course, $c, $course->categories[$c]['stored']['aggregation']);
                self::auto_update_max($course, $c);
            }
        }
        foreach ($cats as $c) {
            $course->categories[$c]['canapply'] =
                self::can_apply_limit_rules($course, $c, $course->categories[$c]['aggregation']);
        }
    }

    private static function auto_update_weights(course_model $course, int $c): void {
        $totalgrademax = 0.0;
        $totaloverriddenweight = 0.0;
        $totaloverriddengrademax = 0.0;
        $automaticpresent = false;
        $overridearray = [];
        foreach ($course->categories[$c]['children'] as $i) {
            $it = $course->items[$i];
            if ($it['gradetype'] == 0 || $it['gradetype'] == 3) {
                continue;
            }
            $overridearray[] = [$i, intval($it['aggregationcoef']) != 0, $it['aggregationcoef2'], $it['weightoverride']];
            if (!$it['weightoverride'] && $it['aggregationcoef'] == 0) {
                $automaticpresent = true;
            }
            if ($it['aggregationcoef'] > 0 || ($it['weightoverride'] && $it['aggregationcoef2'] <= 0)) {
                continue;
            }
            $totalgrademax += $it['grademax'];
            if ($it['weightoverride']) {
                $totaloverriddenweight += $it['aggregationcoef2'];
                $totaloverriddengrademax += $it['grademax'];
            }
        }
        $normalisetotal = 0.0;
        $overriddentotal = 0.0;
        foreach ($overridearray as [, $extra, $weight, $wo]) {
            if (!$extra) {
                $normalisetotal += $weight;
            }
            if ($wo && !$extra && $weight > 0) {
                $overriddentotal += $weight;
            }
        }
        $requiresnormalising = false;
        if ($overriddentotal > 1) {
            $requiresnormalising = true;
            $normalisetotal = $overriddentotal;
        }
        $totalnonoverriddengrademax = $totalgrademax - $totaloverriddengrademax;
        foreach ($overridearray as [$i, , $weight]) {
            $it = $course->items[$i];
            if ($it['aggregationcoef'] > 0 && $it['weightoverride']) {
                continue;
            }
            $prev = $it['aggregationcoef2'];
            if ($it['aggregationcoef'] > 0 && !$it['weightoverride']) {
                $new = $totalgrademax != 0 ? ($it['grademax'] / $totalgrademax) : 0.0;
            } else if (!$it['weightoverride']) {
                if ($totaloverriddenweight >= 1 || $totalnonoverriddengrademax == 0 || $it['grademax'] == 0) {
                    $new = 0.0;
                } else {
                    $new = ($it['grademax'] / $totalnonoverriddengrademax) * (1 - $totaloverriddenweight);
                }
            } else if ((!$automaticpresent && $normalisetotal != 1) || $requiresnormalising || $weight < 0) {
                $new = ($normalisetotal == 0 || $weight < 0) ? 0.0 : $weight / $normalisetotal;
            } else {
                $new = $prev;
            }
            if (round($prev, 5) !== round($new, 5)) {
                $course->items[$i]['aggregationcoef2'] = decimal::db_decimal5($new);
            }
        }
    }

    private static function can_apply_limit_rules(course_model $course, int $c, int $aggregation): bool {
        $cat = $course->categories[$c];
        if ($aggregation != course_model::SUM) {
            return true;
        }
        $lastweight = null;
        $lastmax = null;
        foreach ($cat['children'] as $i) {
            $it = $course->items[$i];
            if ($it['aggregate']) {
                return false;
            }
            if ($it['aggregationcoef'] > 0) {
                return false;
            }
            if ($lastweight !== null && $lastweight != $it['aggregationcoef2']) {
                return false;
            }
            if ($lastmax !== null && $lastmax != $it['grademax']) {
                return false;
            }
            $lastweight = $it['aggregationcoef2'];
            $lastmax = $it['grademax'];
        }
        return true;
    }

    private static function auto_update_max(course_model $course, int $c): void {
        $cat = $course->categories[$c];
        $total = $cat['item'];
        if ($course->items[$total]['formula'] !== null) {
            return;
        }
        if (!$cat['deps']) {
            $course->items[$total]['grademax'] = 0.0;
            $course->items[$total]['grademin'] = 0.0;
            $course->items[$total]['gradetype'] = 1;
            return;
        }
        $maxes = [];
        foreach ($cat['deps'] as $i) {
            $it = $course->items[$i];
            if ($it['aggregationcoef'] > 0 || $it['aggregationcoef2'] <= 0) {
                continue;
            }
            $maxes[$i] = $it['grademax'];
        }
        $st = $cat['stored'];
        if ($st['canapply']) {
            self::apply_limit_rules($course->items, $st['aggregation'], $st['droplow'], $st['keephigh'], $maxes);
        }
        $max = 0.0;
        foreach ($maxes as $m) {
            $max += $m;
        }
        $course->items[$total]['grademax'] = decimal::db_decimal5($max);
        $course->items[$total]['grademin'] = 0.0;
        $course->items[$total]['gradetype'] = 1;
    }

    /**
     * grade_category::apply_limit_rules() on an itemindex => value array.
     *
     * @param array[] $items the course's items
     * @param int $agg aggregation method
     * @param int $droplow
     * @param int $keephigh
     * @param array $values
     */
    private static function apply_limit_rules(array $items, int $agg, int $droplow, int $keephigh, array &$values): void {
        $extraused = ($agg == 11 || $agg == 12 || $agg == 13);
        if ($droplow > 0) {
            asort($values, SORT_NUMERIC);
            $dropped = 0;
            while ($dropped < $droplow) {
                $keys = array_keys($values);
                $count = count($keys);
                if ($count === 0) {
                    break;
                }
                $orig = null;
                foreach ($keys as $k => $key) {
                    if (!$extraused || $items[$key]['aggregationcoef'] <= 0) {
                        $orig = $k;
                        break;
                    }
                }
                if ($orig === null) {
                    break;
                }
                $found = $keys[$orig];
                $foundmax = $items[$found]['grademax'];
                $k = 1;
                while ($orig + $k < $count) {
                    $possible = $keys[$orig + $k];
                    $k++;
                    if ($values[$found] != $values[$possible]) {
                        break;
                    }
                    if ($extraused && $items[$possible]['aggregationcoef'] > 0) {
                        continue;
                    }
                    if ($foundmax < $items[$possible]['grademax']) {
                        $foundmax = $items[$possible]['grademax'];
                        $found = $possible;
                    }
                }
                unset($values[$found]);
                $dropped++;
            }
        } else if ($keephigh > 0) {
            arsort($values, SORT_NUMERIC);
            $kept = 0;
            foreach ($values as $key => $v) {
                if ($extraused && $items[$key]['aggregationcoef'] > 0) {
                    continue;
                } else if ($kept < $keephigh) {
                    $kept++;
                } else {
                    unset($values[$key]);
                }
            }
        }
    }

    private static function standardise(float $raw, float $smin, float $smax, float $tmin, float $tmax): float {
        if ($smax == $smin || $tmin == $tmax) {
            return $tmax;
        }
        $factor = ($raw - $smin) / ($smax - $smin);
        $diff = $tmax - $tmin;
        return $factor * $diff + $tmin;
    }

    private static function bounded(int $gradetype, float $min, float $max, float $maxcoef, float $v): float {
        if ($gradetype == 2) {
            $r = round($v + 0.00001);
            $b = $r < $min ? $min : ($r > $max ? $max : $r);
            return (float)(int)$b;
        }
        // grade_item::bounded_grade(): with unlimitedgrades a value grade may reach max x factor.
        $max = $max * $maxcoef;
        return $v < $min ? $min : ($v > $max ? $max : $v);
    }

    private static function adjust_raw_grade(array $it, float $raw, float $maxcoef): ?float {
        if ($it['gradetype'] == 1) {
            if ($it['grademax'] < $it['grademin']) {
                return null;
            }
            if ($it['grademax'] == $it['grademin']) {
                return $it['grademax'];
            }
            $g = $raw;
            if ($it['rawgrademin'] != $it['grademin'] || $it['rawgrademax'] != $it['grademax']) {
                $g = self::standardise($g, $it['rawgrademin'], $it['rawgrademax'], $it['grademin'], $it['grademax']);
            }
            $g *= $it['multfactor'];
            $g += $it['plusfactor'];
            return self::bounded(1, $it['grademin'], $it['grademax'], $maxcoef, $g);
        } else if ($it['gradetype'] == 2) {
            if ($it['grademax'] < 0) {
                return null;
            }
            if ($it['grademax'] == 0) {
                return $it['grademax'];
            }
            $g = $raw;
            if ($it['rawgrademin'] != $it['grademin'] || $it['rawgrademax'] != $it['grademax']) {
                $g = self::standardise($g, $it['rawgrademin'], $it['rawgrademax'], $it['grademin'], $it['grademax']);
            }
            return self::bounded(2, $it['grademin'], $it['grademax'], $maxcoef, $g);
        }
        return null;
    }

    /**
     * Regrade one user.
     *
     * @param float[] $cells values in item order
     * @param int[] $flags flag bytes in item order
     * @return array [final (float|null)[], rawmin float[], rawmax float[]]
     */
    public function regrade_user(array $cells, array $flags): array {
        if ($this->usage !== null) {
            $this->usage = [];
        }
        $final = [];
        $rmin = [];
        $rmax = [];
        foreach ($this->items as $i => $it) {
            $f = $flags[$i];
            $calculated = $it['formula'] !== null;
            if ($it['aggregate'] && !$calculated) {
                if ($f & course_model::OVERRIDDEN) {
                    $rmin[$i] = $it['givenmin'];
                    $rmax[$i] = $it['givenmax'];
                } else {
                    $rmin[$i] = 0.0;
                    $rmax[$i] = 100.0;
                }
            } else if ($calculated) {
                $rmin[$i] = $it['grademin'];
                $rmax[$i] = $it['grademax'];
            } else {
                $rmin[$i] = $it['rawgrademin'];
                $rmax[$i] = $it['rawgrademax'];
            }
            $final[$i] = null;
            if (!($f & course_model::HAS_VALUE)) {
                continue;
            }
            $v = decimal::db_decimal5($cells[$i]);
            if ($f & course_model::OVERRIDDEN) {
                $final[$i] = $v;
            } else if (!$calculated && $it['itemtype'] === 'mod') {
                $a = self::adjust_raw_grade($it, $v, $this->maxcoef);
                $final[$i] = $a === null ? null : decimal::db_decimal5($a);
            } else if (!$calculated && $it['itemtype'] === 'manual') {
                $final[$i] = $v;
            }
        }
        foreach ($this->order as $i) {
            if ($flags[$i] & course_model::OVERRIDDEN) {
                continue;
            }
            $it = $this->items[$i];
            if ($it['formula'] !== null) {
                $params = [];
                $allnull = true;
                foreach ($it['fdeps'] as $d) {
                    if ($final[$d] === null) {
                        $params[] = 0.0;
                    } else {
                        $params[] = $final[$d];
                        $allnull = false;
                    }
                }
                if ($allnull) {
                    $final[$i] = null;
                } else {
                    $r = $it['formula']->evaluate($params);
                    $final[$i] = ($r === null || is_nan($r)) ? null :
                        decimal::db_decimal5(self::bounded($it['gradetype'], $it['grademin'], $it['grademax'], $this->maxcoef, $r));
                }
            } else if ($it['own'] !== null) {
                $this->aggregate_grades($it['own'], $flags, $final, $rmin, $rmax);
            }
        }
        return [$final, $rmin, $rmax];
    }

    private function user_min_max(int $d, array $rmin, array $rmax): array {
        $it = $this->items[$d];
        if (($it['aggregate'] && $it['formula'] === null) || $this->minmaxfromgrade) {
            return [$rmin[$d], $rmax[$d]];
        }
        return [$it['grademin'], $it['grademax']];
    }

    private function aggregate_grades(int $c, array $flags, array &$final, array &$rmin, array &$rmax): void {
        $cat = $this->categories[$c];
        $total = $cat['item'];
        $titem = $this->items[$total];
        $final[$total] = null;
        $track = $this->usage !== null;
        $novalue = $dropped = [];
        if (!$cat['deps']) {
            if ($track) {
                $this->usage[$c] = ['novalue' => [], 'dropped' => [], 'extra' => [], 'weights' => []];
            }
            return;
        }
        $issum = $cat['aggregation'] == course_model::SUM;
        $values = [];
        $allnull = true;
        foreach ($track && isset($this->usageorder[$c]) ? $this->usageorder[$c] : $cat['deps'] as $d) {
            $v = $final[$d];
            if ($v === null && $cat['aggregateonlygraded']) {
                $novalue[$d] = 0;
                continue;
            }
            if ($flags[$d] & course_model::EXCLUDED) {
                $dropped[$d] = 0;
                continue;
            }
            if ($v === null) {
                $values[$d] = 0.0;
                continue;
            }
            $allnull = false;
            [$umin, $umax] = $this->user_min_max($d, $rmin, $rmax);
            $values[$d] = $issum ? self::standardise($v, 0.0, $umax, 0.0, 1.0) : self::standardise($v, $umin, $umax, 0.0, 1.0);
        }
        $allvalues = $values;
        if ($cat['canapply']) {
            self::apply_limit_rules($this->items, $cat['aggregation'], $cat['droplow'], $cat['keephigh'], $values);
        }
        $extra = [];
        if ($track) {
            // array_diff($allvalues, $grade_values): by (string) value, so a dropped grade equal to a
            // kept one is not marked dropped.
            $kept = [];
            foreach ($values as $v) {
                $kept[sprintf('%.13e', $v)] = true;
            }
            foreach ($allvalues as $d => $v) {
                if (!isset($kept[sprintf('%.13e', $v)])) {
                    $dropped[$d] = 0;
                }
            }
            if (in_array($cat['aggregation'], [11, 12, 13], true)) {
                foreach ($values as $d => $v) {
                    if ($this->items[$d]['aggregationcoef'] > 0) {
                        $extra[$d] = 0;
                    }
                }
            }
            $this->usage[$c] = ['novalue' => $novalue, 'dropped' => $dropped, 'extra' => $extra, 'weights' => []];
        }
        asort($values, SORT_NUMERIC);
        if (!$values) {
            return;
        }
        [$grade, $gmin, $gmax] = $this->aggregate_values($c, $values, $rmin, $rmax);
        if ($track) {
            $this->usage[$c]['weights'] = $this->usage_weights($c, $values, $grade);
            // aggregate_grades() leaves the result's range on the category's grade item.
            $this->usagebounds[$c] = [$gmin, $gmax];
        }
        $bmin = $gmin;
        $bmax = $gmax;
        if ($issum) {
            $gmin = 0.0;
        }
        if (!$allnull && $grade !== null) {
            $g = self::standardise($grade, 0.0, 1.0, $gmin, $gmax);
            $final[$total] = decimal::db_decimal5(self::bounded($titem['gradetype'], $bmin, $bmax, $this->maxcoef, $g));
        }
        $rmin[$total] = decimal::db_decimal5($gmin);
        $rmax[$total] = decimal::db_decimal5($gmax);
    }

    private function aggregate_values(int $c, array $values, array $rmin, array $rmax): array {
        $cat = $this->categories[$c];
        $titem = $this->items[$cat['item']];
        $grademin = $titem['grademin'];
        $grademax = $titem['grademax'];
        $num = count($values);
        switch ($cat['aggregation']) {
            case 2: // Median.
                $g = array_values($values);
                $grade = ($num % 2 == 0) ? ($g[intdiv($num, 2) - 1] + $g[intdiv($num, 2)]) / 2 : $g[intdiv($num, 2)];
                break;
            case 4: // Lowest.
                $grade = reset($values);
                break;
            case 6: // Highest.
                $grade = end($values);
                break;
            case 8: // Mode: buckets of (string)$value at 14 significant digits.
                $freq = [];
                foreach ($values as $v) {
                    $k = sprintf('%.13e', $v);
                    $freq[$k] = ($freq[$k] ?? 0) + 1;
                }
                $top = max($freq);
                $grade = null;
                foreach ($freq as $k => $n) {
                    if ($n == $top) {
                        $m = (float)$k;
                        if ($grade === null || $m > $grade) {
                            $grade = $m;
                        }
                    }
                }
                break;
            case 10: // Weighted mean.
                $weightsum = 0.0;
                $sum = 0.0;
                foreach ($values as $i => $v) {
                    $coef = $this->items[$i]['aggregationcoef'];
                    if ($coef <= 0) {
                        continue;
                    }
                    $weightsum += $coef;
                    $sum += $coef * $v;
                }
                $grade = $weightsum == 0 ? null : $sum / $weightsum;
                break;
            case 11: // Simple weighted mean.
                $weightsum = 0.0;
                $sum = null;
                foreach ($values as $i => $v) {
                    if ($this->items[$i]['aggregationcoef'] > 0) {
                        continue;
                    }
                    $w = $this->items[$i]['grademax'] - $this->items[$i]['grademin'];
                    if ($w <= 0) {
                        continue;
                    }
                    $weightsum += $w;
                    $sum = ($sum ?? 0.0) + $w * $v;
                }
                foreach ($values as $i => $v) {
                    if ($this->items[$i]['aggregationcoef'] <= 0) {
                        continue;
                    }
                    $w = $this->items[$i]['grademax'] - $this->items[$i]['grademin'];
                    if ($w <= 0) {
                        continue;
                    }
                    $sum = ($sum ?? 0.0) + $w * $v;
                }
                $grade = $weightsum == 0 ? $sum : ($sum === null ? null : $sum / $weightsum);
                break;
            case 12: // Mean with extra credits.
                $n = 0;
                $sum = null;
                foreach ($values as $i => $v) {
                    if ($this->items[$i]['aggregationcoef'] == 0) {
                        $n++;
                        $sum = ($sum ?? 0.0) + $v;
                    }
                }
                foreach ($values as $i => $v) {
                    $coef = $this->items[$i]['aggregationcoef'];
                    if ($coef > 0) {
                        $sum = ($sum ?? 0.0) + $coef * $v;
                    }
                }
                $grade = $n == 0 ? $sum : ($sum === null ? null : $sum / $n);
                break;
            case 13:
                return $this->natural($values, $rmin, $rmax);
            default: // Mean of grades.
                $sum = 0.0;
                foreach ($values as $v) {
                    $sum += $v;
                }
                $grade = $sum / $num;
        }
        return [$grade, $grademin, $grademax];
    }

    private function natural(array $values, array $rmin, array $rmax): array {
        $items = $this->items;
        $sumweights = 0.0;
        $grademin = 0.0;
        $grademax = 0.0;
        foreach ($values as $i => $v) {
            [$umin, $umax] = $this->user_min_max($i, $rmin, $rmax);
            if (!($items[$i]['aggregationcoef'] > 0) && $items[$i]['aggregationcoef2'] > 0) {
                $grademin += $umin;
                $grademax += $umax;
                $sumweights += $items[$i]['aggregationcoef2'];
            }
        }
        $uw = [];
        $totaloverriddenweight = 0.0;
        $totaloverriddengrademax = 0.0;
        foreach ($values as $i => $v) {
            if ($items[$i]['weightoverride']) {
                if ($items[$i]['aggregationcoef2'] <= 0) {
                    $uw[$i] = 0.0;
                    continue;
                }
                $uw[$i] = $sumweights != 0 ? $items[$i]['aggregationcoef2'] / $sumweights : 0.0;
                if ($items[$i]['aggregationcoef'] > 0) {
                    continue;
                }
                $totaloverriddenweight += $uw[$i];
                $totaloverriddengrademax += $this->user_min_max($i, $rmin, $rmax)[1];
            }
        }
        $nonoverriddenpoints = $grademax - $totaloverriddengrademax;
        foreach ($values as $i => $v) {
            if (!$items[$i]['weightoverride'] && !($items[$i]['aggregationcoef'] > 0)) {
                $umax = $this->user_min_max($i, $rmin, $rmax)[1];
                if ($nonoverriddenpoints > 0) {
                    $uw[$i] = ($umax / $nonoverriddenpoints) * (1 - $totaloverriddenweight);
                } else {
                    $uw[$i] = 0.0;
                    if ($items[$i]['aggregationcoef2'] > 0) {
                        $grademax -= $umax;
                    }
                }
            }
        }
        foreach ($values as $i => $v) {
            if (!$items[$i]['weightoverride'] && $items[$i]['aggregationcoef'] > 0) {
                $umax = $this->user_min_max($i, $rmin, $rmax)[1];
                $uw[$i] = $grademax != 0 ? $umax / $grademax : 0.0;
            }
        }
        $sum = 0.0;
        foreach ($values as $i => $v) {
            if ($items[$i]['aggregationcoef'] > 0) {
                continue;
            }
            $sum += $v * ($uw[$i] ?? 0.0) * $grademax;
        }
        foreach ($values as $i => $v) {
            if (!($items[$i]['aggregationcoef'] > 0)) {
                continue;
            }
            $sum += $v * ($uw[$i] ?? 0.0) * $grademax;
        }
        if ($this->usage !== null) {
            $this->naturallast = [$uw, $grademax];
        }
        if ($grademax > 0) {
            $grade = $sum / $grademax;
        } else {
            $grade = $sum;
            $grademax = $sum;
        }
        return [$grade, $grademin, $grademax];
    }

    /**
     * The weights grade_category::aggregate_values_and_adjust_bounds() reports for the aggregated
     * values (each grade's contribution, aggregationweight), as Moodle 4.5.6 computes them.
     *
     * @param int $c category index
     * @param array $values item index => normalised grade, sorted ascending (after limit rules)
     * @param float|null $grade the aggregated grade (0..1)
     * @return array item index => weight (items without a weight are absent)
     */
    private function usage_weights(int $c, array $values, ?float $grade): array {
        $cat = $this->categories[$c];
        $titem = $this->items[$cat['item']];
        // The total's range as the previous user's aggregation left it on the grade item.
        [$grademin, $grademax] = $this->usagebounds[$c] ?? [$titem['grademin'], $titem['grademax']];
        $bounded = fn(float $v) => self::bounded($titem['gradetype'], $grademin, $grademax, $this->maxcoef, $v);
        $num = count($values);
        $w = [];
        $items = $this->items;
        switch ($cat['aggregation']) {
            case 2: // Median.
                $k = 0;
                foreach ($values as $i => $v) {
                    if ($num % 2 == 0 && ($k == intdiv($num, 2) - 1 || $k == intdiv($num, 2))) {
                        $w[$i] = 0.5;
                    } else if ($num % 2 != 0 && $k == intval(($num / 2) - 0.5)) {
                        $w[$i] = 1.0;
                    } else {
                        $w[$i] = 0.0;
                    }
                    $k++;
                }
                break;
            case 4: // Lowest.
            case 6: // Highest.
                foreach ($values as $i => $v) {
                    $w[$i] = 0.0;
                }
                $keys = array_keys($values);
                $w[$cat['aggregation'] == 4 ? reset($keys) : end($keys)] = 1.0;
                break;
            case 8: // Mode: the grades equal to the mode (as a number) share it.
                $top = 0;
                $freq = [];
                foreach ($values as $v) {
                    $key = sprintf('%.13e', $v);
                    $freq[$key] = ($freq[$key] ?? 0) + 1;
                    $top = max($top, $freq[$key]);
                }
                foreach ($values as $i => $v) {
                    $w[$i] = ($top > 0 && $v == $grade) ? 1.0 / $top : 0.0;
                }
                break;
            case 10: // Weighted mean.
                $weightsum = 0.0;
                foreach ($values as $i => $v) {
                    $w[$i] = $items[$i]['aggregationcoef'];
                    if ($items[$i]['aggregationcoef'] > 0) {
                        $weightsum += $items[$i]['aggregationcoef'];
                    }
                }
                if ($weightsum != 0) {
                    foreach ($w as $i => $x) {
                        $w[$i] = $x / $weightsum;
                    }
                }
                break;
            case 11: // Simple weighted mean.
            case 12: // Mean with extra credits.
                $simple = $cat['aggregation'] == 11;
                $weightsum = 0.0;
                $sum = null;
                $n = 0;
                foreach ($values as $i => $v) {
                    if ($simple) {
                        if ($items[$i]['aggregationcoef'] > 0) {
                            continue;
                        }
                        $iw = $items[$i]['grademax'] - $items[$i]['grademin'];
                        if ($iw <= 0) {
                            continue;
                        }
                        $weightsum += $iw;
                        $sum = ($sum ?? 0.0) + $iw * $v;
                    } else if ($items[$i]['aggregationcoef'] == 0) {
                        $n++;
                        $sum = ($sum ?? 0.0) + $v;
                        $w[$i] = 1.0;
                    }
                }
                $div = $simple ? $weightsum : (float)$n;
                foreach ($values as $i => $v) {
                    if (!($items[$i]['aggregationcoef'] > 0)) {
                        continue;
                    }
                    $iw = $simple ? $items[$i]['grademax'] - $items[$i]['grademin'] : $items[$i]['aggregationcoef'];
                    if ($simple && $iw <= 0) {
                        $w[$i] = 0.0;
                        continue;
                    }
                    $oldsum = $sum;
                    $sum = ($sum ?? 0.0) + $iw * $v;
                    if ($div <= 0) {
                        if ($simple) {
                            $w[$i] = 0.0;
                        }
                        continue;
                    }
                    $normold = self::standardise(($oldsum ?? 0.0) / $div, 0.0, 1.0, $grademin, $grademax);
                    $norm = self::standardise($sum / $div, 0.0, 1.0, $grademin, $grademax);
                    $bold = $bounded($normold);
                    $bnew = $bounded($norm);
                    if ($bnew - $bold <= 0) {
                        $w[$i] = 0.0;
                    } else if ($bnew < $norm) {
                        $w[$i] = self::standardise($bnew - $normold, $grademin, $grademax, 0.0, 1.0) / $v;
                    } else {
                        $w[$i] = $simple ? $iw / $weightsum : 1.0 / $n;
                    }
                }
                foreach ($values as $i => $v) {
                    if ($items[$i]['aggregationcoef'] > 0) {
                        continue;
                    }
                    if ($simple) {
                        $w[$i] = $weightsum > 0 ? ($items[$i]['grademax'] - $items[$i]['grademin']) / $weightsum : 0.0;
                    } else if ($n > 0 && !empty($w[$i])) {
                        $w[$i] = 1.0 / $n;
                    }
                }
                break;
            case 13: // Natural.
                [$uw, $nmax] = $this->naturallast;
                $sum = 0.0;
                foreach ($values as $i => $v) {
                    if (!($items[$i]['aggregationcoef'] > 0)) {
                        $sum += $v * ($uw[$i] ?? 0.0) * $nmax;
                        $w[$i] = $uw[$i] ?? 0.0;
                    }
                }
                foreach ($values as $i => $v) {
                    if (!($items[$i]['aggregationcoef'] > 0)) {
                        continue;
                    }
                    $oldsum = $sum;
                    $weighted = $v * ($uw[$i] ?? 0.0) * $nmax;
                    $sum += $weighted;
                    if ($nmax <= 0) {
                        $w[$i] = $uw[$i] ?? 0.0;
                        continue;
                    }
                    $diff = $bounded($sum) - $bounded($oldsum);
                    if ($diff <= 0) {
                        $w[$i] = 0.0;
                    } else if ($diff < $weighted) {
                        $w[$i] = $diff / ($v * $nmax);
                    } else {
                        $w[$i] = $uw[$i] ?? 0.0;
                    }
                }
                break;
            default: // Mean of grades.
                foreach ($values as $i => $v) {
                    $w[$i] = 1.0 / $num;
                }
        }
        return $w;
    }
}
