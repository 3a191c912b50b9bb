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
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class php_engine {
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
     * Compile a course description (JSON text).
     *
     * @param string $json
     * @return php_engine
     */
    public static function from_json(string $json): php_engine {
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
        $e = new php_engine();
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
            if (!in_array($agg, self::AGGREGATIONS, true)) {
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
        $e->order = $e->dependency_order();
        $e->pre_regrade();
        return $e;
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
                    if (!in_array($a, self::AGGREGATIONS, true)) {
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

    private function depends_on(int $i): array {
        $it = $this->items[$i];
        if ($it['formula'] !== null) {
            return $it['fdeps'];
        }
        if ($it['own'] !== null) {
            return $this->categories[$it['own']]['deps'];
        }
        return [];
    }

    private function needs_compute(int $i): bool {
        return $this->items[$i]['formula'] !== null || $this->items[$i]['aggregate'];
    }

    private function describe(int $i): string {
        $it = $this->items[$i];
        return $it['idnumber'] === '' ? "item {$it['id']}" : "item {$it['id']} [[{$it['idnumber']}]]";
    }

    private function dependency_order(): array {
        $n = count($this->items);
        $state = array_fill(0, $n, 0);
        $order = [];
        for ($start = 0; $start < $n; $start++) {
            if ($state[$start] != 0 || !$this->needs_compute($start)) {
                continue;
            }
            $stack = [[$start, 0]];
            $state[$start] = 1;
            while ($stack) {
                $top = count($stack) - 1;
                [$node, $next] = $stack[$top];
                $deps = $this->depends_on($node);
                if ($next < count($deps)) {
                    $d = $deps[$next];
                    $stack[$top][1]++;
                    if (!$this->needs_compute($d)) {
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
                            $names[] = $this->describe($s[0]);
                        }
                        $names[] = $this->describe($d);
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

    private function pre_regrade(): void {
        $cats = array_keys($this->categories);
        usort($cats, function ($a, $b) {
            return [$this->categories[$b]['depth'], $this->categories[$a]['id']]
                <=> [$this->categories[$a]['depth'], $this->categories[$b]['id']];
        });
        foreach ($cats as $c) {
            if ($this->categories[$c]['stored']['aggregation'] == self::SUM) {
                $this->auto_update_weights($c);
                $this->categories[$c]['stored']['canapply'] =
                    $this->can_apply_limit_rules($c, $this->categories[$c]['stored']['aggregation']);
                $this->auto_update_max($c);
            }
        }
        foreach ($cats as $c) {
            $this->categories[$c]['canapply'] = $this->can_apply_limit_rules($c, $this->categories[$c]['aggregation']);
        }
    }

    private function auto_update_weights(int $c): void {
        $totalgrademax = 0.0;
        $totaloverriddenweight = 0.0;
        $totaloverriddengrademax = 0.0;
        $automaticpresent = false;
        $overridearray = [];
        foreach ($this->categories[$c]['children'] as $i) {
            $it = $this->items[$i];
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
            $it = $this->items[$i];
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
                $this->items[$i]['aggregationcoef2'] = self::db_decimal5($new);
            }
        }
    }

    private function can_apply_limit_rules(int $c, int $aggregation): bool {
        $cat = $this->categories[$c];
        if ($aggregation != self::SUM) {
            return true;
        }
        $lastweight = null;
        $lastmax = null;
        foreach ($cat['children'] as $i) {
            $it = $this->items[$i];
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

    private function auto_update_max(int $c): void {
        $cat = $this->categories[$c];
        $total = $cat['item'];
        if ($this->items[$total]['formula'] !== null) {
            return;
        }
        if (!$cat['deps']) {
            $this->items[$total]['grademax'] = 0.0;
            $this->items[$total]['grademin'] = 0.0;
            $this->items[$total]['gradetype'] = 1;
            return;
        }
        $maxes = [];
        foreach ($cat['deps'] as $i) {
            $it = $this->items[$i];
            if ($it['aggregationcoef'] > 0 || $it['aggregationcoef2'] <= 0) {
                continue;
            }
            $maxes[$i] = $it['grademax'];
        }
        $st = $cat['stored'];
        if ($st['canapply']) {
            $this->apply_limit_rules($st['aggregation'], $st['droplow'], $st['keephigh'], $maxes);
        }
        $max = 0.0;
        foreach ($maxes as $m) {
            $max += $m;
        }
        $this->items[$total]['grademax'] = self::db_decimal5($max);
        $this->items[$total]['grademin'] = 0.0;
        $this->items[$total]['gradetype'] = 1;
    }

    /**
     * grade_category::apply_limit_rules() on an itemindex => value array.
     *
     * @param int $agg aggregation method
     * @param int $droplow
     * @param int $keephigh
     * @param array $values
     */
    private function apply_limit_rules(int $agg, int $droplow, int $keephigh, array &$values): void {
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
                    if (!$extraused || $this->items[$key]['aggregationcoef'] <= 0) {
                        $orig = $k;
                        break;
                    }
                }
                if ($orig === null) {
                    break;
                }
                $found = $keys[$orig];
                $foundmax = $this->items[$found]['grademax'];
                $k = 1;
                while ($orig + $k < $count) {
                    $possible = $keys[$orig + $k];
                    $k++;
                    if ($values[$found] != $values[$possible]) {
                        break;
                    }
                    if ($extraused && $this->items[$possible]['aggregationcoef'] > 0) {
                        continue;
                    }
                    if ($foundmax < $this->items[$possible]['grademax']) {
                        $foundmax = $this->items[$possible]['grademax'];
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
                if ($extraused && $this->items[$key]['aggregationcoef'] > 0) {
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
                if ($f & self::OVERRIDDEN) {
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
            if (!($f & self::HAS_VALUE)) {
                continue;
            }
            $v = self::db_decimal5($cells[$i]);
            if ($f & self::OVERRIDDEN) {
                $final[$i] = $v;
            } else if (!$calculated && $it['itemtype'] === 'mod') {
                $a = self::adjust_raw_grade($it, $v, $this->maxcoef);
                $final[$i] = $a === null ? null : self::db_decimal5($a);
            } else if (!$calculated && $it['itemtype'] === 'manual') {
                $final[$i] = $v;
            }
        }
        foreach ($this->order as $i) {
            if ($flags[$i] & self::OVERRIDDEN) {
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
                        self::db_decimal5(self::bounded($it['gradetype'], $it['grademin'], $it['grademax'], $this->maxcoef, $r));
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
        $issum = $cat['aggregation'] == self::SUM;
        $values = [];
        $allnull = true;
        foreach ($track && isset($this->usageorder[$c]) ? $this->usageorder[$c] : $cat['deps'] as $d) {
            $v = $final[$d];
            if ($v === null && $cat['aggregateonlygraded']) {
                $novalue[$d] = 0;
                continue;
            }
            if ($flags[$d] & self::EXCLUDED) {
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
            $this->apply_limit_rules($cat['aggregation'], $cat['droplow'], $cat['keephigh'], $values);
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
            $final[$total] = self::db_decimal5(self::bounded($titem['gradetype'], $bmin, $bmax, $this->maxcoef, $g));
        }
        $rmin[$total] = self::db_decimal5($gmin);
        $rmax[$total] = self::db_decimal5($gmax);
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

    /** Binary operators of formula tokens, in the compiled course's numbering. */
    const COMPILED_OPS = ['+', '-', '*', '/', '^', '>', '<', '<=', '>=', '==', '%'];
    /** Formula functions, in the compiled course's numbering (gradebook_core::formula::Func). */
    const COMPILED_FUNCS = ['sin', 'sinh', 'asin', 'asinh', 'cos', 'cosh', 'acos', 'acosh', 'tan', 'tanh', 'atan',
        'atanh', 'sqrt', 'abs', 'log', 'exp', 'floor', 'ceil', 'average', 'max', 'min', 'mod', 'pi', 'power', 'round',
        'sum', 'if', 'and', 'or'];
    /** Item types, in the compiled course's numbering. */
    const COMPILED_ITEMTYPES = ['mod' => 0, 'manual' => 1, 'category' => 2, 'course' => 3];

    /**
     * The compiled course the what-if widget loads: this engine's state after loading (formulas
     * as postfix tokens, dependency order, Natural weights and maxima) as little-endian doubles.
     * Identical, byte for byte, to gradebook_core's Course::to_compiled() (the layout is documented
     * in native/gradebook-core/src/compiled.rs); the parity tests check both that and the regrade.
     *
     * @param string $coursejson course description
     * @return string pack('e*', ...)
     */
    public static function compile(string $coursejson): string {
        return pack('e*', ...self::from_json($coursejson)->compiled());
    }

    /**
     * The compiled course as a list of floats (see compile()).
     *
     * @return float[]
     */
    public function compiled(): array {
        $o = [2, count($this->items), count($this->categories), $this->maxcoef, $this->minmaxfromgrade ? 1 : 0];
        foreach ($this->items as $it) {
            $calculated = $it['formula'] !== null;
            if ($calculated) {
                $defaults = [$it['grademin'], $it['grademax']];
            } else if ($it['aggregate']) {
                $defaults = [0.0, 100.0];
            } else {
                $defaults = [$it['rawgrademin'], $it['rawgrademax']];
            }
            array_push($o, self::COMPILED_ITEMTYPES[$it['itemtype']], $it['gradetype'], $it['grademin'],
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
                        array_push($o, 2, array_search($t[1], self::COMPILED_OPS, true), 0);
                        break;
                    case 'neg':
                        array_push($o, 3, 0, 0);
                        break;
                    default:
                        array_push($o, 4, array_search($t[1], self::COMPILED_FUNCS, true), $t[2]);
                }
            }
        }
        foreach ($this->categories as $c) {
            array_push($o, $c['parent'] ?? -1, $c['aggregation'], $c['aggregateonlygraded'] ? 1 : 0, $c['droplow'],
                $c['keephigh'], $c['stored']['aggregation'], $c['stored']['droplow'], $c['stored']['keephigh'],
                $c['stored']['canapply'] ? 1 : 0, $c['item'], $c['depth'], $c['canapply'] ? 1 : 0, $c['id'],
                count($c['children']), ...$c['children']);
            array_push($o, count($c['deps']), ...$c['deps']);
        }
        array_push($o, count($this->order), ...$this->order);
        return array_map('floatval', $o);
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
        $final = [];
        $has = '';
        $rmin = [];
        $rmax = [];
        for ($u = 0; $u < $nusers; $u++) {
            [$f, $mi, $ma] = $e->regrade_user(array_slice($cells, $u * $n, $n), array_slice($fl, $u * $n, $n));
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
        $rows = [];
        for ($u = 0; $u < $nusers; $u++) {
            $rows[] = $e->regrade_user(array_slice($cells, $u * $n, $n), array_slice($fl, $u * $n, $n))[0];
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
            self::fail("{$func}: nusers must not be negative, got {$nusers}");
        }
        try {
            $e = self::from_json($coursejson);
        } catch (\InvalidArgumentException $ex) {
            throw new \InvalidArgumentException("{$func}: " . $ex->getMessage());
        }
        $n = count($e->items);
        $expected = $nusers * $n;
        if (strlen($grades) % 8 != 0) {
            self::fail("{$func}: grades: " . strlen($grades) .
                " bytes is not a whole number of pack('e*') doubles");
        }
        if (strlen($grades) / 8 != $expected) {
            $got = strlen($grades) / 8;
            self::fail("{$func}: grades: expected {$expected} values ({$nusers} users x {$n} items), got {$got}");
        }
        if (strlen($flags) != $expected) {
            self::fail("{$func}: flags: expected {$expected} bytes ({$nusers} users x {$n} items), got " .
                strlen($flags));
        }
        $cells = $expected ? array_values(unpack('e*', $grades)) : [];
        $fl = $expected ? array_values(unpack('C*', $flags)) : [];
        foreach ($fl as $k => $f) {
            $u = intdiv($k, max($n, 1));
            $it = $k % max($n, 1);
            if ($f & ~15) {
                self::fail(sprintf('%s: flags: unknown bits 0x%02x at user %d item %d', $func, $f, $u, $it));
            }
            if (($f & self::HAS_VALUE) && !is_finite($cells[$k])) {
                $shown = is_nan($cells[$k]) ? 'NaN' : ($cells[$k] > 0 ? 'inf' : '-inf');
                self::fail("{$func}: grades: value at user {$u} item {$it} is not a finite number ({$shown})");
            }
        }
        return [$e, $cells, $fl, $n];
    }
}
