<?php
// Golden-case harness: builds each gradebook with Moodle's own API on a real database and lets
// Moodle regrade it (grade_regrade_final_grades), then records what Moodle stored.
//
// Runs inside the golden container (see Dockerfile, run.sh) with a Moodle tree at /var/www/moodle:
//   php moodle_harness.php <cases-in.json> <cases-out.json>
// Input cases use the course-spec format of docs/native.md plus "cells"/"flags" (users x items).
// Output cases have Moodle's ids substituted and "expected" filled in from grade_grades.

define('CLI_SCRIPT', true);
require('/var/www/moodle/config.php');
require_once($CFG->libdir . '/gradelib.php');
require_once($CFG->dirroot . '/course/lib.php');
require_once($CFG->libdir . '/grade/grade_scale.php');

global $DB, $CFG;
\core\session\manager::set_user(get_admin());

[$in, $out] = array_slice($argv, 1, 2);
// GOLDEN_WRITEBACK (writeback.sh): each case's regrade also goes through writeback.php, which compares
// Moodle's write-back with local_nativegrades' regrader from the same starting state.
$writeback = getenv('GOLDEN_WRITEBACK') ? [] : null;
if ($writeback !== null) {
    require(__DIR__ . '/writeback.php');
}

/**
 * The case's (last) regrade: Moodle's grade_regrade_final_grades(), in writeback mode compared with
 * the native regrade of the same state.
 */
function harness_regrade(int $cid, string $name): mixed {
    global $writeback;
    if ($writeback === null) {
        return grade_regrade_final_grades($cid);
    }
    [$status, $report] = wb_check($cid);
    $writeback[] = ['name' => $name] + $report;
    return $status;
}

$cases = json_decode(file_get_contents($in), true);
$results = [];
$dropped = [];
$scales = [];

function scale_for(int $n): int {
    global $scales;
    if (!isset($scales[$n])) {
        $s = new grade_scale(['name' => "golden{$n}", 'scale' => implode(',', array_map(fn($i) => "s{$i}", range(1, $n))),
            'courseid' => 0, 'userid' => 2, 'description' => '', 'descriptionformat' => FORMAT_HTML], false);
        $scales[$n] = $s->insert();
    }
    return $scales[$n];
}

// Site settings a case may set (the spec's "site"); restored after every case.
$sitedefaults = ['unlimitedgrades' => get_config('core', 'unlimitedgrades'),
    'gradeoverhundredprocentmax' => get_config('core', 'gradeoverhundredprocentmax')];
function set_site(array $values): void {
    foreach ($values as $name => $value) {
        if ($value === false || $value === null) {
            unset_config($name);
        } else {
            set_config($name, $value);
        }
    }
}

foreach ($cases as $k => $case) {
  set_site($sitedefaults);
  try {
    $spec = $case['course'];
    $site = $spec['site'] ?? [];
    set_site(['unlimitedgrades' => empty($site['unlimitedgrades']) ? 0 : 1,
        'gradeoverhundredprocentmax' => $site['gradeoverhundredprocentmax'] ?? $sitedefaults['gradeoverhundredprocentmax']]);
    $nusers = $case['nusers'];
    $n = count($spec['items']);
    $course = create_course((object)['fullname' => "golden {$k}", 'shortname' => "golden{$k}-" . uniqid(), 'category' => 1]);
    $cid = $course->id;
    if (isset($site['minmaxtouse'])) {
        // The course setting "Min and max grades used in calculation" (grade_settings).
        grade_set_setting($cid, 'minmaxtouse', (int)$site['minmaxtouse']);
    }
    $coursecat = grade_category::fetch_course_category($cid);
    // Categories (parents first).
    $catmap = [];
    $pending = $spec['categories'];
    while ($pending) {
        foreach ($pending as $i => $c) {
            if ($c['parent'] === null) {
                $catmap[$c['id']] = $coursecat->id;
            } else if (isset($catmap[$c['parent']])) {
                $gc = new grade_category(['courseid' => $cid, 'fullname' => "cat{$c['id']}"], false);
                $gc->parent = $catmap[$c['parent']];
                $gc->insert();
                $catmap[$c['id']] = $gc->id;
            } else {
                continue;
            }
            $DB->update_record('grade_categories', (object)[
                'id' => $catmap[$c['id']], 'aggregation' => $c['aggregation'],
                'aggregateonlygraded' => (int)!empty($c['aggregateonlygraded']),
                'droplow' => $c['droplow'] ?? 0, 'keephigh' => $c['keephigh'] ?? 0, 'aggregateoutcomes' => 0,
            ]);
            unset($pending[$i]);
        }
    }
    // Items, in sort order.
    $itemmap = [];
    foreach ($spec['items'] as $pos => $it) {
        $type = $it['itemtype'] ?? 'mod';
        if ($type === 'course' || $type === 'category') {
            $gi = grade_item::fetch(['courseid' => $cid, 'itemtype' => $type, 'iteminstance' => $catmap[$it['categoryid']]]);
        } else {
            $gi = new grade_item(['courseid' => $cid, 'categoryid' => $catmap[$it['categoryid']], 'itemtype' => $type,
                'itemname' => "item{$it['id']}", 'gradetype' => $it['gradetype'] ?? 1], false);
            if ($type === 'mod') {
                // A module without rescale_activity_grades(), so adjust_raw_grade() rescales.
                $gi->itemmodule = 'quiz';
                $gi->iteminstance = $it['id'];
                $gi->itemnumber = 0;
            }
            $gi->insert();
        }
        $gt = $it['gradetype'] ?? 1;
        $rec = ['id' => $gi->id, 'idnumber' => $it['idnumber'] ?? '', 'gradetype' => $gt,
            'grademin' => $it['grademin'] ?? 0, 'grademax' => $it['grademax'] ?? 100,
            'multfactor' => $it['multfactor'] ?? 1, 'plusfactor' => $it['plusfactor'] ?? 0,
            'aggregationcoef' => $it['aggregationcoef'] ?? 0, 'aggregationcoef2' => $it['aggregationcoef2'] ?? 0,
            'weightoverride' => (int)!empty($it['weightoverride']), 'sortorder' => $pos + 1, 'calculation' => null,
            'scaleid' => $gt == 2 ? scale_for((int)($it['grademax'] ?? 1)) : null];
        $DB->update_record('grade_items', (object)$rec);
        $itemmap[$it['id']] = $gi->id;
    }
    foreach ($spec['items'] as $it) {
        if (!empty($it['calculation'])) {
            $gi = grade_item::fetch(['id' => $itemmap[$it['id']]]);
            $gi->set_calculation($it['calculation']);
        }
    }
    $cells = $case['cells'];
    $flags = $case['flags'];
    $computed = fn($it) => in_array($it['itemtype'] ?? 'mod', ['course', 'category']) || !empty($it['calculation']);
    $now = time();
    $pass2 = false;
    for ($u = 0; $u < $nusers; $u++) {
        foreach ($spec['items'] as $i => $it) {
            $f = $flags[$u * $n + $i];
            $v = $cells[$u * $n + $i];
            if ($computed($it)) {
                $pass2 = $pass2 || $f & (2 | 4 | 8);
                continue;
            }
            $has = (bool)($f & 1);
            $ovr = (bool)($f & 4);
            $row = ['itemid' => $itemmap[$it['id']], 'userid' => 100000 + $u,
                'rawgrademin' => $it['rawgrademin'] ?? $it['grademin'] ?? 0,
                'rawgrademax' => $it['rawgrademax'] ?? $it['grademax'] ?? 100,
                'excluded' => ($f & 2) ? $now : 0, 'overridden' => $ovr ? $now : 0, 'hidden' => ($f & 8) ? 1 : 0,
                'timecreated' => $now, 'timemodified' => $now, 'aggregationstatus' => 'unknown', 'aggregationweight' => 0];
            if (($it['itemtype'] ?? 'mod') === 'mod') {
                $row['rawgrade'] = $has && !$ovr ? $v : null;
                $row['finalgrade'] = $has && $ovr ? $v : null;
                if (($it['gradetype'] ?? 1) == 2) {
                    $row['rawscaleid'] = scale_for((int)$it['grademax']);
                }
            } else {
                $row['finalgrade'] = $has ? $v : null;
            }
            $DB->insert_record('grade_grades', (object)$row);
        }
    }
    // The settings above were written straight to the tables: drop the cached category objects.
    grade_category::clean_record_set();
    $DB->set_field('grade_items', 'needsupdate', 1, ['courseid' => $cid]);
    $t0 = microtime(true);
    $status = $pass2 ? grade_regrade_final_grades($cid) : harness_regrade($cid, $case['name'] ?? "case{$k}");
    $regradeseconds = microtime(true) - $t0;
    if ($pass2 && $status === true) {
        // Flags on computed items need their rows, which the first regrade created.  The first
        // regrade also rewrote natural weights and maxima (auto_update_weights() is not idempotent),
        // so put every item back to the case's stored settings: pass 2 is then exactly one regrade
        // of the case as given.
        foreach ($spec['items'] as $pos => $it) {
            $DB->update_record('grade_items', (object)['id' => $itemmap[$it['id']],
                'gradetype' => $it['gradetype'] ?? 1, 'grademin' => $it['grademin'] ?? 0,
                'grademax' => $it['grademax'] ?? 100, 'aggregationcoef' => $it['aggregationcoef'] ?? 0,
                'aggregationcoef2' => $it['aggregationcoef2'] ?? 0, 'weightoverride' => (int)!empty($it['weightoverride'])]);
        }
        foreach ($spec['items'] as $i => $it) {
            if (!$computed($it)) {
                continue;
            }
            $gi = grade_item::fetch(['id' => $itemmap[$it['id']]]);
            for ($u = 0; $u < $nusers; $u++) {
                $f = $flags[$u * $n + $i];
                $gg = $DB->get_record('grade_grades', ['itemid' => $gi->id, 'userid' => 100000 + $u]);
                if (!$gg) {
                    $gg = (object)['id' => $DB->insert_record('grade_grades', (object)['itemid' => $gi->id,
                        'userid' => 100000 + $u, 'timecreated' => $now, 'timemodified' => $now])];
                }
                $upd = ['id' => $gg->id, 'excluded' => ($f & 2) ? $now : 0, 'hidden' => ($f & 8) ? 1 : 0,
                    'overridden' => ($f & 4) ? $now : 0];
                if ($f & 4) {
                    $upd['finalgrade'] = ($f & 1) ? $cells[$u * $n + $i] : null;
                    $upd['rawgrademin'] = $gi->grademin;
                    $upd['rawgrademax'] = $gi->grademax;
                } else if ($gi->is_aggregate_item() && !$gi->is_calculated()) {
                    // Back to a fresh row, as the model regrades from scratch.
                    $upd['finalgrade'] = null;
                    $upd['rawgrademin'] = 0;
                    $upd['rawgrademax'] = 100;
                }
                $DB->update_record('grade_grades', (object)$upd);
            }
        }
        grade_category::clean_record_set();
        $DB->set_field('grade_items', 'needsupdate', 1, ['courseid' => $cid]);
        $t0 = microtime(true);
        $status = harness_regrade($cid, $case['name'] ?? "case{$k}");
        $regradeseconds = microtime(true) - $t0;
    }
    if ($status !== true) {
        $dropped[] = ['case' => $k, 'errors' => array_values(array_map('strval', $status))];
        continue;
    }
    // Rewrite the spec with Moodle's ids and record what Moodle stored.
    $outspec = $spec;
    foreach ($outspec['categories'] as &$c) {
        $c['id'] = (int)$catmap[$c['id']];
        $c['parent'] = $c['parent'] === null ? null : (int)$catmap[$c['parent']];
    }
    unset($c);
    $final = [];
    $has = [];
    $rmin = [];
    $rmax = [];
    $itemsafter = [];
    foreach ($outspec['items'] as &$it) {
        $mid = $itemmap[$it['id']];
        $it['id'] = (int)$mid;
        $it['categoryid'] = (int)$catmap[$it['categoryid']];
        $db = $DB->get_record('grade_items', ['id' => $mid]);
        $itemsafter[] = ['id' => $mid, 'grademin' => (float)$db->grademin, 'grademax' => (float)$db->grademax,
            'aggregationcoef2' => (float)$db->aggregationcoef2, 'calculation' => $db->calculation];
    }
    unset($it);
    for ($u = 0; $u < $nusers; $u++) {
        foreach ($outspec['items'] as $it) {
            $gg = $DB->get_record('grade_grades', ['itemid' => $it['id'], 'userid' => 100000 + $u]);
            $final[] = ($gg && $gg->finalgrade !== null) ? (float)$gg->finalgrade : 0.0;
            $has[] = ($gg && $gg->finalgrade !== null) ? 1 : 0;
            $rmin[] = $gg ? (float)$gg->rawgrademin : 0.0;
            $rmax[] = $gg ? (float)$gg->rawgrademax : 100.0;
        }
    }
    $results[] = ['name' => $case['name'] ?? "case{$k}", 'course' => $outspec, 'nusers' => $nusers,
        'cells' => $cells, 'flags' => $flags,
        'expected' => ['final' => $final, 'hasvalue' => $has, 'rawmin' => $rmin, 'rawmax' => $rmax,
            'items_after_regrade' => $itemsafter], 'regrade_seconds' => $regradeseconds];
    if (count($results) % 25 == 0) {
        fwrite(STDERR, "golden: " . count($results) . " cases regraded by Moodle\n");
    }
  } catch (\Throwable $e) {
    $dropped[] = ['case' => $k, 'errors' => [get_class($e) . ': ' . $e->getMessage()]];
  }
}
set_site($sitedefaults);
fwrite(STDERR, 'golden: site defaults unlimitedgrades=' . var_export($sitedefaults['unlimitedgrades'], true) .
    ' gradeoverhundredprocentmax=' . var_export($sitedefaults['gradeoverhundredprocentmax'], true) . "\n");
file_put_contents($out, json_encode(['cases' => $results, 'dropped' => $dropped],
    JSON_PRETTY_PRINT | JSON_PRESERVE_ZERO_FRACTION | JSON_UNESCAPED_SLASHES));
if (!empty($GLOBALS['wbfixture'])) {
    file_put_contents(getenv('GOLDEN_WRITEBACK_FIXTURE'), json_encode(['provenance' => ['moodle_release' => $CFG->release,
        'moodle_version' => $CFG->version, 'database' => $DB->get_server_info()['description'],
        'generated' => gmdate('c')], 'cases' => $GLOBALS['wbfixture']], JSON_PRESERVE_ZERO_FRACTION | JSON_UNESCAPED_SLASHES));
}
if ($writeback !== null) {
    file_put_contents("{$out}.writeback.json", json_encode($writeback, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES));
    foreach (['php', 'native'] as $engine) {
        $equal = count(array_filter($writeback, fn($r) => $r[$engine]['mode'] === 'native' && !$r[$engine]['diff']));
        $fallback = count(array_filter($writeback, fn($r) => $r[$engine]['mode'] !== 'native'));
        $tm = array_sum(array_column($writeback, 'moodle_seconds'));
        $tn = array_sum(array_map(fn($r) => $r[$engine]['seconds'], $writeback));
        fwrite(STDERR, sprintf("golden: writeback %s: %d of %d courses equal to Moodle's write-back, %d regraded by " .
            "Moodle's code (refused); Moodle %.2f s, native %.2f s\n", $engine, $equal, count($writeback), $fallback, $tm, $tn));
    }
}
fwrite(STDERR, 'golden: wrote ' . count($results) . ' cases, dropped ' . count($dropped) . " (Moodle reported errors)\n");
