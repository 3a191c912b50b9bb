<?php
// Write-back equality inside a real Moodle (issue 13 section 2), used by moodle_harness.php when
// GOLDEN_WRITEBACK is set (writeback.sh): for one course about to be regraded, record the state,
// let Moodle's grade_regrade_final_grades() regrade it and record what it wrote (grade_grades,
// grade_items, grade_grades_history, grade_items_history, the events in the standard log), put the
// course back to the recorded state, regrade it with local_nativegrades' regrader (each engine in
// turn, the state restored between them) and compare table by table.  Timestamps and row ids are
// excepted (history rows and events are matched by the (itemid, userid) of their grade).
// Leaves the course in Moodle's state and returns Moodle's status.

use local_nativegrades\local\regrader;

/** Columns excepted from the comparison: timestamps and ids (rows are keyed by itemid/userid). */
const WB_SKIP = ['id', 'timecreated', 'timemodified', 'oldid'];

function wb_grade_rows(int $cid): array {
    global $DB;
    return $DB->get_records_sql('SELECT gg.* FROM {grade_grades} gg JOIN {grade_items} gi ON gi.id = gg.itemid
                                  WHERE gi.courseid = ? ORDER BY gg.id', [$cid]);
}

function wb_max(string $table): int {
    global $DB;
    return (int)$DB->get_field_sql("SELECT COALESCE(MAX(id), 0) FROM {{$table}}");
}

function wb_snapshot(int $cid): array {
    global $DB;
    get_log_manager(true);
    // The grade rows are copied in SQL (the harness runs on MariaDB): the bench course has 60,000.
    $DB->execute('DROP TABLE IF EXISTS wb_snap_gg');
    $DB->execute('CREATE TABLE wb_snap_gg AS SELECT gg.* FROM {grade_grades} gg JOIN {grade_items} gi ON gi.id = gg.itemid
                   WHERE gi.courseid = ?', [$cid]);
    return ['items' => $DB->get_records('grade_items', ['courseid' => $cid], 'id'),
        'gh' => wb_max('grade_grades_history'), 'ih' => wb_max('grade_items_history'), 'log' => wb_max('logstore_standard_log')];
}

function wb_restore(int $cid, array $s): void {
    global $DB;
    get_log_manager(true);
    $ids = array_keys($s['items']);
    [$isql, $p] = $DB->get_in_or_equal($ids);
    $DB->delete_records_select('grade_grades', "itemid $isql", $p);
    $DB->execute('INSERT INTO {grade_grades} SELECT * FROM wb_snap_gg');
    foreach ($s['items'] as $it) {
        $DB->update_record('grade_items', $it);
    }
    $DB->delete_records_select('grade_grades_history', 'id > ?', [$s['gh']]);
    $DB->delete_records_select('grade_items_history', 'id > ?', [$s['ih']]);
    $DB->delete_records_select('logstore_standard_log', 'id > ?', [$s['log']]);
    grade_category::clean_record_set();
}

function wb_clean(object $row): array {
    $a = (array)$row;
    foreach (WB_SKIP as $k) {
        unset($a[$k]);
    }
    foreach ($a as $k => $v) {
        // DECIMAL columns come back as strings; compare values, not their spelling.
        if (is_string($v) && is_numeric($v) && str_contains($v, '.')) {
            $a[$k] = (float)$v;
        }
    }
    return $a;
}

/**
 * The course as the regrade finds it, for the CI fixture: the rows of the tables the native regrade
 * reads and writes, and the site settings and module facts it reads.
 */
function wb_start(int $cid): array {
    global $DB, $CFG, $USER;
    $rows = fn($t) => array_values(array_map(fn($r) => (array)$r, $DB->get_records($t, ['courseid' => $cid], 'id')));
    $cfg = [];
    foreach ((array)$CFG as $k => $v) {
        if (is_scalar($v) && (str_starts_with($k, 'grade') || in_array($k, ['unlimitedgrades', 'enableoutcomes',
                'disablegradehistory', 'enableavailability', 'gradeoverhundredprocentmax'], true))) {
            $cfg[$k] = $v;
        }
    }
    $rescale = [];
    foreach ($DB->get_fieldset_sql("SELECT DISTINCT itemmodule FROM {grade_items} WHERE courseid = ? AND itemtype = 'mod'",
            [$cid]) as $mod) {
        $rescale[$mod] = component_callback_exists('mod_' . $mod, 'rescale_activity_grades') !== false;
    }
    return ['config' => $cfg, 'plugin' => (array)get_config('local_nativegrades'), 'userid' => (int)$USER->id,
        'rescale' => $rescale, 'grade_categories' => $rows('grade_categories'), 'grade_items' => $rows('grade_items'),
        'grade_settings' => $rows('grade_settings'),
        'grade_grades' => array_values(array_map(fn($r) => (array)$r, wb_grade_rows($cid)))];
}

/** What a regrade left: the tables and events, keyed so that two runs compare. */
function wb_record(int $cid, array $s): array {
    global $DB;
    get_log_manager(true);
    $grades = [];
    $key = [];
    foreach (wb_grade_rows($cid) as $g) {
        $key[(int)$g->id] = "{$g->itemid}:{$g->userid}";
        $grades["{$g->itemid}:{$g->userid}"] = wb_clean($g);
    }
    ksort($grades);
    $items = [];
    foreach ($DB->get_records('grade_items', ['courseid' => $cid], 'id') as $it) {
        $items[$it->id] = wb_clean($it);
    }
    $gh = [];
    foreach ($DB->get_records_select('grade_grades_history', 'id > ?', [$s['gh']], 'id') as $h) {
        $gh[] = json_encode(['grade' => $key[(int)$h->oldid] ?? "deleted {$h->oldid}"] + wb_clean($h));
    }
    sort($gh);
    $ih = [];
    foreach ($DB->get_records_select('grade_items_history', 'id > ?', [$s['ih']], 'id') as $h) {
        $ih[] = json_encode(['item' => (int)$h->oldid] + wb_clean($h));
    }
    sort($ih);
    $events = [];
    foreach ($DB->get_records_select('logstore_standard_log', 'id > ?', [$s['log']], 'id') as $e) {
        $other = $e->other === null ? null : (json_decode($e->other, true) ?? @unserialize($e->other));
        $object = $e->objecttable === 'grade_grades' ? ($key[(int)$e->objectid] ?? "?{$e->objectid}") : (int)$e->objectid;
        $events[] = json_encode(['event' => $e->eventname, 'object' => $object, 'userid' => (int)$e->userid,
            'relateduserid' => $e->relateduserid === null ? null : (int)$e->relateduserid, 'other' => $other]);
    }
    sort($events);
    return ['grade_grades' => $grades, 'grade_items' => $items, 'grade_grades_history' => $gh,
        'grade_items_history' => $ih, 'events' => $events];
}

/** Differences of two recordings, at most a few per table. */
function wb_diff(array $a, array $b): array {
    $out = [];
    foreach (['grade_grades', 'grade_items'] as $t) {
        foreach (array_unique(array_merge(array_keys($a[$t]), array_keys($b[$t]))) as $k) {
            $x = $a[$t][$k] ?? null;
            $y = $b[$t][$k] ?? null;
            if ($x === null || $y === null) {
                $out[$t][] = "{$k}: " . ($x === null ? 'missing in Moodle' : 'missing natively');
                continue;
            }
            foreach ($x as $col => $v) {
                if ($v !== ($y[$col] ?? null)) {
                    $out[$t][] = "{$k}.{$col}: moodle " . json_encode($v) . ' native ' . json_encode($y[$col] ?? null);
                }
            }
        }
    }
    foreach (['grade_grades_history', 'grade_items_history', 'events'] as $t) {
        $onlya = array_diff($a[$t], $b[$t]);
        $onlyb = array_diff($b[$t], $a[$t]);
        if (count($a[$t]) !== count($b[$t]) || $onlya || $onlyb) {
            $out[$t][] = sprintf('moodle %d rows, native %d rows', count($a[$t]), count($b[$t]));
            foreach (array_slice($onlya, 0, 3) as $r) {
                $out[$t][] = "only moodle: {$r}";
            }
            foreach (array_slice($onlyb, 0, 3) as $r) {
                $out[$t][] = "only native: {$r}";
            }
        }
    }
    foreach ($out as $t => $lines) {
        $out[$t] = array_slice($lines, 0, 6) + (count($lines) > 6 ? [6 => '... ' . (count($lines) - 6) . ' more'] : []);
    }
    return $out;
}

/**
 * Moodle's regrade and the native ones of the same starting state, compared.
 *
 * @return array [Moodle's status, report]
 */
function wb_check(int $cid): array {
    $s = wb_snapshot($cid);
    $start = getenv('GOLDEN_WRITEBACK_FIXTURE') ? wb_start($cid) : null;
    global $DB;
    [$q0, $qt0] = [$DB->perf_get_queries(), $DB->perf_get_queries_time()];
    $t0 = microtime(true);
    $status = grade_regrade_final_grades($cid);
    $tm = microtime(true) - $t0;
    $mq = ['queries' => $DB->perf_get_queries() - $q0, 'dbseconds' => round($DB->perf_get_queries_time() - $qt0, 3)];
    $moodle = wb_record($cid, $s);
    if ($start !== null) {
        // The CI test of the write-back (tests/native/test_writeback.py) replays this course.
        $GLOBALS['wbfixture'][] = ['courseid' => $cid, 'start' => $start, 'moodle' => $moodle];
    }
    // The row order generate_grades()' query returns per category and user (ties sort in it).
    $orders = [];
    foreach (grade_category::fetch_all(['courseid' => $cid]) as $cat) {
        $gi = $cat->load_grade_item();
        $gis = array_merge($gi->depends_on(), [$gi->id]);
        [$usql, $params] = $GLOBALS['DB']->get_in_or_equal($gis);
        $rs = $GLOBALS['DB']->get_recordset_select('grade_grades', "itemid $usql", $params, 'userid',
            implode(',', (new grade_grade())->required_fields));
        foreach ($rs as $r) {
            if ((int)$r->itemid !== (int)$gi->id) {
                $orders[$gi->id][$r->userid][] = (int)$r->itemid;
            }
        }
        $rs->close();
    }
    $report = ['moodle_seconds' => $tm, 'moodle_db' => $mq, 'moodle_status' => $status === true ? true : array_values(array_map('strval', $status)),
        // Moodle's set_usedinaggregation() result per grade (golden data for test_usage.py).
        'moodle_orders' => $orders,
        'moodle_usage' => array_map(fn($g) => [$g['aggregationstatus'], $g['aggregationweight'] === null ? null :
            (float)$g['aggregationweight']], $moodle['grade_grades'])];
    // make bench-native runs each engine twice (PHP engine, extension, PHP engine, extension), so that an
    // effect of the order shows; the extension's run is last (its write-back stays in place).
    $runs = getenv('GOLDEN_WRITEBACK') === 'bench' ? ['php', 'native', 'php', 'native'] : ['php', 'native'];
    foreach ($runs as $k => $engine) {
        wb_restore($cid, $s);
        $t0 = microtime(true);
        $r = regrader::regrade_course($cid, false, $engine);
        $run = ['mode' => $r['mode'], 'reasons' => $r['reasons'], 'seconds' => microtime(true) - $t0,
            'changed' => $r['changed'], 'activitychanged' => $r['activitychanged'] ?? null, 'events' => $r['events'],
            'profile' => $r['profile'] ?? null,
            'diff' => wb_diff($moodle, wb_record($cid, $s))];
        if ($k < 2) {
            $report[$engine] = $run;
        } else {
            $report['repeat'][] = ['engine' => $engine] + $run;
        }
    }
    if (getenv('GOLDEN_WRITEBACK') === 'bench') {
        // make bench-native: the report is all it reads; the extension's write-back stays in place.
        $report['activity_grade_probe'] = wb_activity_grade_probe($cid);
        $report['weight_change'] = wb_weight_change($cid);
        return [$status, $report];
    }
    // Leave Moodle's own result in place (the golden expectations read it).
    wb_restore($cid, $s);
    $status = grade_regrade_final_grades($cid);
    return [$status, $report];
}

/**
 * make bench-native: what grade_grade::update() costs per activity grade in the bench course beyond the
 * row writes.  The harness makes grade items of type 'mod' without course modules, so with completion
 * on (the site and course defaults) every changed activity grade makes notify_changed() look for the
 * course module and print a debugging message, and update_feedback_files() call grade_item::get_context(),
 * which rebuilds the course cache (rebuild_course_cache(): UPDATE course.cacherev, modinfo rebuilt) and
 * prints a line.  Moodle's regrade pays this once per changed activity grade; a course with real
 * activities would not.  Measured here on 100 repetitions of those calls (output discarded).
 */
function wb_activity_grade_probe(int $cid): array {
    global $DB;
    $gi = grade_item::fetch(['id' => (int)$DB->get_field_sql("SELECT MIN(id) FROM {grade_items}
                                                               WHERE courseid = ? AND itemtype = 'mod'", [$cid])]);
    $reps = 100;
    ob_start();
    $t0 = microtime(true);
    for ($k = 0; $k < $reps; $k++) {
        $cm = get_coursemodule_from_instance($gi->itemmodule, $gi->iteminstance, $gi->courseid);
        if (!$cm) {
            debugging("Couldn't find course-module for module '{$gi->itemmodule}', instance '{$gi->iteminstance}', " .
                "course '{$gi->courseid}'");
        }
        $gi->get_context();
    }
    $t = (microtime(true) - $t0) / $reps;
    ob_end_clean();
    // Each rebuild leaves a versioned entry in the course-module cache (file store): count them, as a
    // candidate for an order effect between runs that rebuild the cache per grade.
    global $CFG;
    $files = 0;
    $dir = "{$CFG->cachedir}/cachestore_file/default_application/core_coursemodinfo";
    if (is_dir($dir)) {
        foreach (new RecursiveIteratorIterator(new RecursiveDirectoryIterator($dir, FilesystemIterator::SKIP_DOTS)) as $f) {
            $files++;
        }
    }
    return ['itemid' => (int)$gi->id, 'has_course_module' => (bool)$cm, 'seconds_per_grade' => $t,
        'coursemodinfo_cache_files' => $files];
}

/**
 * make bench-native: "time until the gradebook opens" after a teacher changes one grade item's
 * weight, from the same (current) state twice: as Moodle does it (opening the gradebook runs
 * grade_regrade_final_grades() behind the progress bar), and with local_nativegrades' scheduled
 * task having run first (the gradebook then finds nothing to regrade).  The two end states are
 * compared table by table.
 */
function wb_weight_change(int $cid): array {
    global $DB;
    // The first activity item of a weighted-mean category: its weight is aggregationcoef.
    $itemid = (int)$DB->get_field_sql("SELECT MIN(gi.id) FROM {grade_items} gi
                                          JOIN {grade_categories} gc ON gc.id = gi.categoryid
                                         WHERE gi.courseid = ? AND gc.aggregation = ? AND gi.itemtype = 'mod'",
        [$cid, GRADE_AGGREGATE_WEIGHTED_MEAN]);
    if (!$itemid) {
        throw new coding_exception('bench course without an activity item in a weighted-mean category');
    }
    $change = function () use ($itemid): void {
        $gi = grade_item::fetch(['id' => $itemid]);
        $gi->aggregationcoef = (float)$gi->aggregationcoef + 1;
        $gi->update();  // qualifies_for_regrading(): force_regrading() sets needsupdate
    };
    // Opening the gradebook (grade_regrade_final_grades_if_required() without the page output).
    $open = function () use ($cid): array {
        $t0 = microtime(true);
        $status = grade_needs_regrade_final_grades($cid) ? grade_regrade_final_grades($cid) : true;
        return [microtime(true) - $t0, $status === true];
    };
    $s = wb_snapshot($cid);
    $change();
    [$tmoodle, $ok] = $open();
    $moodle = wb_record($cid, $s);
    wb_restore($cid, $s);
    $change();
    $t0 = microtime(true);
    ob_start();
    (new \local_nativegrades\task\regrade_courses())->execute();
    $log = ob_get_clean();
    $ttask = microtime(true) - $t0;
    [$topen, $ok2] = $open();
    return ['itemid' => $itemid, 'moodle_open_seconds' => $tmoodle, 'moodle_ok' => $ok, 'task_seconds' => $ttask,
        'native_open_seconds' => $topen, 'native_ok' => $ok2, 'task_log' => $log,
        'diff' => wb_diff($moodle, wb_record($cid, $s))];
}
