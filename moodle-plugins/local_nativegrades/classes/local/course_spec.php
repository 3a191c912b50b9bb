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
 * Reads a course description (JSON, docs/native.md) into a course_model (gradebook-core/src/spec.rs):
 * validation with a message naming the problem (InvalidArgumentException), the site settings,
 * formulas compiled against the course's items, the dependency order, then
 * regrade::pre_regrade() (Natural weights and maxima): the state every regrade starts from.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class course_spec {
    private static function fail(string $msg): void {
        throw new \InvalidArgumentException($msg);
    }

    private static function num(array $a, string $key, ?float $default, string $ctx): float {
        if (!array_key_exists($key, $a) || $a[$key] === null) {
            if ($default === null) {
                self::fail("{$ctx}: '{$key}' is required");
            }
            return $default;
        }
        $v = $a[$key];
        if (is_bool($v)) {
            return $v ? 1.0 : 0.0;
        }
        if (!is_int($v) && !is_float($v)) {
            self::fail("{$ctx}: '{$key}' must be a number");
        }
        if (!is_finite((float)$v)) {
            self::fail("{$ctx}: '{$key}' must be a finite number");
        }
        return (float)$v;
    }

    private static function int(array $a, string $key, ?int $default, string $ctx): int {
        $v = self::num($a, $key, $default === null ? null : (float)$default, $ctx);
        if (floor($v) != $v || abs($v) > 9.0e15) {
            self::fail("{$ctx}: '{$key}' must be an integer");
        }
        return (int)$v;
    }

    private static function boolean(array $a, string $key, string $ctx): bool {
        if (!isset($a[$key])) {
            return false;
        }
        if (is_bool($a[$key])) {
            return $a[$key];
        }
        if (is_int($a[$key]) || is_float($a[$key])) {
            return $a[$key] != 0;
        }
        self::fail("{$ctx}: '{$key}' must be a boolean");
        return false;
    }

    private static function str(array $a, string $key, string $ctx): ?string {
        if (!isset($a[$key])) {
            return null;
        }
        if (!is_string($a[$key])) {
            self::fail("{$ctx}: '{$key}' must be a string");
        }
        return $a[$key];
    }

    /**
     * Read a course description (JSON text) into $e: validated, formulas compiled, dependency
     * order, and grade_category::pre_regrade_final_grades() applied (regrade::pre_regrade()).
     *
     * @param string $json
     * @param course_model $e an empty course model
     */
    public static function read(string $json, course_model $e): void {
        $root = json_decode($json, true, 64);
        if (!is_array($root)) {
            self::fail('invalid JSON: ' . json_last_error_msg());
        }
        if (!isset($root['categories']) || !is_array($root['categories']) || !array_is_list($root['categories'])) {
            self::fail("course: 'categories' must be a list");
        }
        if (!isset($root['items']) || !is_array($root['items']) || !array_is_list($root['items'])) {
            self::fail("course: 'items' must be a list");
        }
        $forced = self::forced($root);
        [$e->maxcoef, $e->minmaxfromgrade] = self::site_settings($root);
        $catindex = [];
        $parents = [];
        foreach ($root['categories'] as $i => $c) {
            $ctx = "categories[{$i}]";
            if (!is_array($c)) {
                self::fail("{$ctx}: must be an object");
            }
            $id = self::int($c, 'id', null, $ctx);
            if (isset($catindex[$id])) {
                self::fail("{$ctx}: duplicate category id {$id}");
            }
            $catindex[$id] = $i;
            $agg = self::int($c, 'aggregation', 13, $ctx);
            if (!in_array($agg, course_model::AGGREGATIONS, true)) {
                self::fail("{$ctx}: unknown aggregation method {$agg}");
            }
            $droplow = self::int($c, 'droplow', 0, $ctx);
            $keephigh = self::int($c, 'keephigh', 0, $ctx);
            if ($droplow < 0 || $keephigh < 0) {
                self::fail("{$ctx}: droplow and keephigh must not be negative");
            }
            $parents[] = isset($c['parent']) ? self::int($c, 'parent', null, $ctx) : null;
            $aog = self::boolean($c, 'aggregateonlygraded', $ctx);
            $e->categories[] = [
                'id' => $id, 'parent' => null, 'aggregation' => $forced['aggregation'] ?? $agg,
                'aggregateonlygraded' => $forced['aggregateonlygraded'] ?? $aog,
                'droplow' => $forced['droplow'] ?? $droplow, 'keephigh' => $forced['keephigh'] ?? $keephigh,
                'stored' => ['aggregation' => $agg, 'droplow' => $droplow, 'keephigh' => $keephigh, 'canapply' => true],
                'item' => -1, 'depth' => 0, 'children' => [], 'deps' => [], 'canapply' => true,
            ];
        }
        foreach ($parents as $i => $p) {
            if ($p !== null) {
                if (!isset($catindex[$p])) {
                    self::fail("categories[{$i}]: parent {$p} is not a category of this course");
                }
                $e->categories[$i]['parent'] = $catindex[$p];
            }
        }
        $roots = 0;
        foreach ($e->categories as $c) {
            $roots += $c['parent'] === null ? 1 : 0;
        }
        if ($roots != 1) {
            self::fail("course: expected exactly one course category (parent null), found {$roots}");
        }
        $ncats = count($e->categories);
        foreach ($e->categories as $i => $c) {
            $d = 0;
            $cur = $c['parent'];
            while ($cur !== null) {
                $d++;
                if ($d > $ncats) {
                    self::fail("categories: parent loop through category {$c['id']}");
                }
                $cur = $e->categories[$cur]['parent'];
            }
            $e->categories[$i]['depth'] = $d;
        }
        $itembyid = [];
        foreach ($root['items'] as $i => $it) {
            $ctx = "items[{$i}]";
            if (!is_array($it)) {
                self::fail("{$ctx}: must be an object");
            }
            $id = self::int($it, 'id', null, $ctx);
            if ($id <= 0) {
                self::fail("{$ctx}: id must be positive");
            }
            if (isset($itembyid[$id])) {
                self::fail("{$ctx}: duplicate item id {$id}");
            }
            $itembyid[$id] = $i;
            $type = self::str($it, 'itemtype', $ctx) ?? 'mod';
            if (!in_array($type, ['mod', 'manual', 'category', 'course'], true)) {
                self::fail("{$ctx}: unknown itemtype '{$type}'");
            }
            $catid = self::int($it, 'categoryid', null, $ctx);
            if (!isset($catindex[$catid])) {
                self::fail("{$ctx}: categoryid {$catid} is not a category of this course");
            }
            $ci = $catindex[$catid];
            $gt = self::int($it, 'gradetype', 1, $ctx);
            if ($gt < 0 || $gt > 3) {
                self::fail("{$ctx}: unknown gradetype {$gt}");
            }
            $grademin = self::num($it, 'grademin', 0.0, $ctx);
            $grademax = self::num($it, 'grademax', 100.0, $ctx);
            $aggregate = $type === 'category' || $type === 'course';
            if ($aggregate) {
                if ($e->categories[$ci]['item'] != -1) {
                    self::fail("{$ctx}: category {$catid} already has a total item");
                }
                $isroot = $e->categories[$ci]['parent'] === null;
                if ($isroot !== ($type === 'course')) {
                    self::fail("{$ctx}: the course category's total must have itemtype 'course' and other totals 'category'");
                }
                if ($gt != 1 && $gt != 2) {
                    self::fail("{$ctx}: a category total must be a value or scale item");
                }
                $e->categories[$ci]['item'] = $i;
                $parent = $e->categories[$ci]['parent'];
                $own = $ci;
            } else {
                $parent = $ci;
                $own = null;
            }
            $calc = self::str($it, 'calculation', $ctx);
            if ($calc !== null && trim($calc) === '') {
                $calc = null;
            }
            $e->items[] = [
                'id' => $id, 'idnumber' => self::str($it, 'idnumber', $ctx) ?? '', 'itemtype' => $type,
                'aggregate' => $aggregate, 'gradetype' => $gt, 'grademin' => $grademin, 'grademax' => $grademax,
                'multfactor' => self::num($it, 'multfactor', 1.0, $ctx),
                'plusfactor' => self::num($it, 'plusfactor', 0.0, $ctx),
                'aggregationcoef' => self::num($it, 'aggregationcoef', 0.0, $ctx),
                'aggregationcoef2' => self::num($it, 'aggregationcoef2', 0.0, $ctx),
                'weightoverride' => self::boolean($it, 'weightoverride', $ctx),
                'rawgrademin' => self::num($it, 'rawgrademin', $grademin, $ctx),
                'rawgrademax' => self::num($it, 'rawgrademax', $grademax, $ctx),
                'givenmin' => $grademin, 'givenmax' => $grademax,
                'hidden' => self::boolean($it, 'hidden', $ctx),
                'calculation' => $calc, 'formula' => null, 'fdeps' => [],
                'parent' => $parent, 'own' => $own,
            ];
        }
        foreach ($e->categories as $c) {
            if ($c['item'] == -1) {
                self::fail("category {$c['id']}: no total item (itemtype 'category'/'course')");
            }
        }
        foreach ($e->items as $i => $it) {
            if ($it['parent'] !== null) {
                $e->categories[$it['parent']]['children'][] = $i;
                if ($it['gradetype'] == 1 || $it['gradetype'] == 2) {
                    $e->categories[$it['parent']]['deps'][] = $i;
                }
            }
        }
        // Rows of one user come in item id order (unique key userid, itemid).
        foreach ($e->categories as $ci => $c) {
            usort($e->categories[$ci]['deps'], fn($a, $b) => $e->items[$a]['id'] <=> $e->items[$b]['id']);
        }
        $idnumbers = [];
        foreach ($e->items as $i => $it) {
            if ($it['idnumber'] !== '' && !isset($idnumbers[$it['idnumber']])) {
                $idnumbers[$it['idnumber']] = $i;
            }
        }
        foreach ($e->items as $i => $it) {
            if ($it['calculation'] === null) {
                continue;
            }
            try {
                [$f, $deps] = self::compile_formula($it['calculation'], $idnumbers, $itembyid);
            } catch (\InvalidArgumentException $ex) {
                $calcjson = json_encode($it['calculation']);
                self::fail("items[{$i}] (id {$it['id']}): calculation {$calcjson}: " . $ex->getMessage());
            }
            if ($it['itemtype'] === 'mod') {
                $e->items[$i]['itemtype'] = 'manual';
            }
            $e->items[$i]['formula'] = $f;
            $e->items[$i]['fdeps'] = $deps;
        }
        $e->order = self::dependency_order($e);
        regrade::pre_regrade($e);
    }

    /**
     * Settings that change the regrade: unlimitedgrades (default off) with gradeoverhundredprocentmax
     * (default 10), minmaxtouse (1 or 2, default 1); any other key is an error.
     *
     * @param array $root
     * @return array [the factor on a value grade's maximum (1 when unlimitedgrades is off), minmaxtouse == 2]
     */
    private static function site_settings(array $root): array {
        if (!array_key_exists('site', $root)) {
            return [1.0, false];
        }
        $site = $root['site'];
        if (!is_array($site) || (array_is_list($site) && $site)) {
            self::fail("course: 'site' must be an object");
        }
        $keys = array_map('strval', array_keys($site));
        sort($keys, SORT_STRING);
        foreach ($keys as $key) {
            if ($key !== 'unlimitedgrades' && $key !== 'gradeoverhundredprocentmax' && $key !== 'minmaxtouse') {
                self::fail("site: unknown setting '{$key}'");
            }
        }
        $factor = self::num($site, 'gradeoverhundredprocentmax', 10.0, 'site');
        $minmaxtouse = self::int($site, 'minmaxtouse', 1, 'site');
        if ($minmaxtouse !== 1 && $minmaxtouse !== 2) {
            self::fail("site: minmaxtouse must be 1 or 2, got {$minmaxtouse}");
        }
        return [self::boolean($site, 'unlimitedgrades', 'site') ? $factor : 1.0, $minmaxtouse === 2];
    }

    /**
     * Site-forced category settings; Moodle's defaults force keephigh to 0 (absent = defaults).
     *
     * @param array $root
     * @return array setting => value
     */
    private static function forced(array $root): array {
        if (!array_key_exists('forced', $root)) {
            return ['keephigh' => 0];
        }
        if (!is_array($root['forced']) || (array_is_list($root['forced']) && $root['forced'])) {
            self::fail("course: 'forced' must be an object");
        }
        $out = [];
        foreach ($root['forced'] as $key => $v) {
            switch ($key) {
                case 'aggregation':
                    $a = self::int($root['forced'], $key, null, 'forced');
                    if (!in_array($a, course_model::AGGREGATIONS, true)) {
                        self::fail("forced: unknown aggregation method {$a}");
                    }
                    $out[$key] = $a;
                    break;
                case 'aggregateonlygraded':
                    $out[$key] = self::boolean($root['forced'], $key, 'forced');
                    break;
                case 'droplow':
                case 'keephigh':
                    $out[$key] = max(0, self::int($root['forced'], $key, null, 'forced'));
                    break;
                default:
                    self::fail("forced: unknown setting '{$key}'");
            }
        }
        return $out;
    }

    private static function compile_formula(string $calc, array $idnumbers, array $itembyid): array {
        $calc = trim($calc);
        if (substr($calc, 0, 1) !== '=') {
            self::fail("a calculation must start with '='");
        }
        $body = substr($calc, 1);
        $text = preg_replace_callback('/\[\[(.*?)\]\]/', function ($m) use ($idnumbers) {
            if (!isset($idnumbers[$m[1]])) {
                throw new \InvalidArgumentException("unknown idnumber [[{$m[1]}]]");
            }
            return '##gi' . ($idnumbers[$m[1]] + 1000000000000) . '##';
        }, $body);
        if (strpos($text, '[[') !== false) {
            self::fail('unterminated [[idnumber]] reference');
        }
        $deps = [];
        $normal = preg_replace_callback('/##gi([^#]*)##/', function ($m) use (&$deps, $itembyid) {
            if (!preg_match('/^\d+$/', $m[1])) {
                throw new \InvalidArgumentException("bad reference ##gi{$m[1]}##");
            }
            $n = (int)$m[1];
            if ($n >= 1000000000000) {
                $idx = $n - 1000000000000;
            } else {
                if (!isset($itembyid[$n])) {
                    throw new \InvalidArgumentException("unknown grade item ##gi{$n}##");
                }
                $idx = $itembyid[$n];
            }
            $slot = array_search($idx, $deps, true);
            if ($slot === false) {
                $deps[] = $idx;
                $slot = count($deps) - 1;
            }
            return "v{$slot}v";
        }, $text);
        if (strpos($normal, '##gi') !== false) {
            self::fail('unterminated ##giID## reference');
        }
        $n = count($deps);
        $f = formula::parse($normal, function (string $name) use ($n) {
            if (preg_match('/^v(\d+)v$/', $name, $m) && (int)$m[1] < $n) {
                return (int)$m[1];
            }
            throw new \InvalidArgumentException("unknown variable '{$name}' (refer to items as [[idnumber]] or ##giID##)");
        });
        return [$f, $deps];
    }

    /**
     * The computed items in grade_regrade_final_grades()' order; a cycle is an error naming it.
     *
     * @param course_model $e
     * @return int[]
     */
    private static function dependency_order(course_model $e): array {
        $n = count($e->items);
        $state = array_fill(0, $n, 0);
        $order = [];
        for ($start = 0; $start < $n; $start++) {
            if ($state[$start] != 0 || !$e->needs_compute($start)) {
                continue;
            }
            $stack = [[$start, 0]];
            $state[$start] = 1;
            while ($stack) {
                $top = count($stack) - 1;
                [$node, $next] = $stack[$top];
                $deps = $e->depends_on($node);
                if ($next < count($deps)) {
                    $d = $deps[$next];
                    $stack[$top][1]++;
                    if (!$e->needs_compute($d)) {
                        continue;
                    }
                    if ($state[$d] == 0) {
                        $state[$d] = 1;
                        $stack[] = [$d, 0];
                    } else if ($state[$d] == 1) {
                        $pos = 0;
                        foreach ($stack as $k => $s) {
                            if ($s[0] == $d) {
                                $pos = $k;
                                break;
                            }
                        }
                        $names = [];
                        foreach (array_slice($stack, $pos) as $s) {
                            $names[] = $e->describe($s[0]);
                        }
                        $names[] = $e->describe($d);
                        self::fail('circular dependency between grade items: ' . implode(' -> ', $names));
                    }
                } else {
                    $state[$node] = 2;
                    $order[] = $node;
                    array_pop($stack);
                }
            }
        }
        return $order;
    }
}
