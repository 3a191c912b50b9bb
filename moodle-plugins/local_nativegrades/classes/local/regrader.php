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
 * A course's regrade through the native engine, written back with the side effects of Moodle's
 * grade_regrade_final_grades() (issue 13, docs/native.md "Native regrade with write-back"):
 *
 *  - grade_items: Natural weights (aggregationcoef2, grade_item::update(), source null) and
 *    maxima of Natural totals (update('aggregation')), as grade_category::pre_regrade_final_grades()
 *    writes them (through grade_item objects: grade_items_history, grade_item_updated events);
 *    needsupdate cleared for every item of the course (regrading_finished()).
 *  - grade_grades, only rows that change (grade_floats_different() on 5 decimals):
 *    activity items: finalgrade (source 'system', timemodified kept) - through grade_grade objects, as
 *    Moodle does, since their notify_changed() updates activity completion; calculated items:
 *    finalgrade and rawgrademin/max = the item's range (source 'compute', timemodified = now), rows
 *    created for users with a grade in the course; category and course totals: finalgrade,
 *    rawgrademin/max (source 'aggregation', timemodified = now), the total's row and the rows of its
 *    children created (item's range) for users with a grade in the category.  These rows are
 *    written in bulk (one UPDATE per chunk of rows, history rows with insert_records()).
 *  - grade_grades_history (unless disablegradehistory): one row per insert and update, as
 *    grade_object::insert()/update() write it (action, oldid, source, loggeduser).
 *  - \core\event\user_graded for every changed grade (relateduser USER_OTHER for activity and
 *    aggregated grades, as Moodle), and \availability_grade\callbacks::grade_changed() per user.
 *
 * Everything runs in one delegated transaction.  Courses the loader refuses are regraded by
 * Moodle's own grade_regrade_final_grades() (the result says so and why).
 *
 *  - grade_grades.aggregationstatus/aggregationweight (set_usedinaggregation()): from the PHP
 *    engine's usage trace (the compiled engines do not report them), bulk, no history.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class regrader {
    /** grade_grade::$required_fields: what Moodle's regrade reads of a grade row. */
    const REQUIRED = ['id', 'itemid', 'userid', 'rawgrade', 'rawgrademax', 'rawgrademin', 'rawscaleid', 'usermodified',
        'finalgrade', 'hidden', 'locked', 'locktime', 'exported', 'overridden', 'excluded', 'timecreated', 'timemodified',
        'aggregationstatus', 'aggregationweight'];

    /** Rows per bulk UPDATE statement. */
    const CHUNK = 500;

    /**
     * Is the native regrade enabled (admin setting local_nativegrades/nativeregrade)?
     *
     * @return bool
     */
    public static function enabled(): bool {
        return get_config('local_nativegrades', 'nativeregrade') !== '0';
    }

    /**
     * Regrade one course: natively when the loader accepts it, else with Moodle's own code.
     *
     * @param int $courseid
     * @param bool $force regrade even if the course item does not need an update
     * @param string|null $engine 'native' or 'php' to bypass the switch
     * @return array summary: courseid, mode ('native'|'moodle'|'current'), engine, reasons, changed,
     *     inserted, events, items, seconds, errors
     */
    public static function regrade_course(int $courseid, bool $force = false, ?string $engine = null): array {
        global $CFG, $DB;
        require_once($CFG->libdir . '/gradelib.php');
        $t0 = microtime(true);
        $out = ['courseid' => $courseid, 'mode' => 'native', 'engine' => $engine ?? engine::name(), 'reasons' => [],
            'changed' => 0, 'inserted' => 0, 'events' => 0, 'items' => 0, 'errors' => []];
        $courseitem = \grade_item::fetch_course_item($courseid);
        if (!$force && !$courseitem->needsupdate) {
            $out['mode'] = 'current';
            $out['seconds'] = microtime(true) - $t0;
            return $out;
        }
        try {
            $prof = new profile();
            $l = course_loader::load($courseid);
            $prof->lap('load');
            $tx = $DB->start_delegated_transaction();
            try {
                $w = new self($courseid, $l, $prof);
                $prof->lap('load');
                $w->write_items();
                $prof->lap('grade_items writes');
                $w->write_grades($engine);
                $DB->set_field('grade_items', 'needsupdate', 0, ['courseid' => $courseid]);
                $prof->lap('grade_items writes');
                $tx->allow_commit();
                $prof->lap('commit');
            } catch (\Throwable $e) {
                $tx->rollback($e);
            }
            // Moodle's caches of grade objects of this course are stale now (observers may read them).
            \grade_category::clean_record_set();
            // The user_graded events, after the commit: Moodle's own regrade runs without a transaction,
            // so its observers (the standard log store included) see each event as it is triggered; inside
            // a transaction the external observers would get them only at the commit, from a buffer
            // (\core\event\manager::$extbuffer) whose draining is quadratic in its length.
            $w->trigger_events();
            $prof->lap('events: create + trigger (observers, log store)');
        } catch (unsupported_course $e) {
            // Moodle's own regrade is the only correct one for this course.
            $out['mode'] = 'moodle';
            $out['engine'] = 'moodle';
            $out['reasons'] = $e->reasons;
            if ($force) {
                $DB->set_field('grade_items', 'needsupdate', 1, ['courseid' => $courseid]);
            }
            $status = grade_regrade_final_grades($courseid);
            if ($status !== true) {
                $out['errors'] = array_values(array_map('strval', $status));
            }
            $out['seconds'] = microtime(true) - $t0;
            return $out;
        }
        $out['changed'] = $w->changed;
        $out['activitychanged'] = $w->activitychanged;
        $out['inserted'] = $w->inserted;
        $out['events'] = $w->events;
        $out['items'] = $w->itemsupdated;
        $out['seconds'] = microtime(true) - $t0;
        $out['profile'] = $prof->report();
        return $out;
    }

    /** @var int */
    private int $courseid;
    /** @var course_loader */
    private course_loader $l;
    /** @var php_engine the course after loading (Natural weights and maxima updated) */
    private php_engine $model;
    /** @var int grade rows updated */
    public int $changed = 0;
    /** @var int activity grade rows updated (of $changed) */
    public int $activitychanged = 0;
    /** @var int grade rows created */
    public int $inserted = 0;
    /** @var int user_graded events triggered */
    public int $events = 0;
    /** @var int aggregationstatus/aggregationweight of grade rows set */
    public int $statuses = 0;
    /** @var int grade items updated */
    public int $itemsupdated = 0;
    /** @var profile where the time goes (regrade_course()'s 'profile') */
    private profile $prof;
    /** @var array[] [grade_grade, relateduserid|null] of every changed grade, in Moodle's order */
    private array $pendingevents = [];

    /**
     * Constructor.
     *
     * @param int $courseid
     * @param course_loader $l
     * @param profile $prof
     */
    private function __construct(int $courseid, course_loader $l, profile $prof) {
        $this->courseid = $courseid;
        $this->l = $l;
        $this->prof = $prof;
        $this->model = php_engine::from_json($l->coursejson);
    }

    /**
     * grade_category::pre_regrade_final_grades(): the Natural weights and maxima the engine
     * computed, written where they differ, deepest categories first, weights before maxima.
     */
    private function write_items(): void {
        $cats = $this->model->categories;
        $order = array_keys($cats);
        usort($order, fn($a, $b) => [$cats[$b]['depth'], $cats[$a]['id']] <=> [$cats[$a]['depth'], $cats[$b]['id']]);
        foreach ($order as $c) {
            if ($cats[$c]['stored']['aggregation'] != php_engine::SUM) {
                continue;
            }
            foreach ($cats[$c]['children'] as $i) {
                $new = $this->model->items[$i]['aggregationcoef2'];
                if (grade_floatval((float)$this->l->items[$i]->aggregationcoef2) !== grade_floatval($new)) {
                    $gi = \grade_item::fetch(['id' => $this->l->items[$i]->id]);
                    $gi->aggregationcoef2 = $new;
                    $gi->update();
                    $this->itemsupdated++;
                }
            }
            $t = $cats[$c]['item'];
            $it = $this->model->items[$t];
            $db = $this->l->items[$t];
            if ($it['formula'] === null && ((float)$db->grademax != $it['grademax'] || (float)$db->grademin != 0.0 ||
                    (int)$db->gradetype !== 1)) {
                $gi = \grade_item::fetch(['id' => $db->id]);
                $gi->grademax = $it['grademax'];
                $gi->grademin = 0;
                $gi->gradetype = GRADE_TYPE_VALUE;
                $gi->update('aggregation');
                $this->itemsupdated++;
            }
        }
    }

    /**
     * Regrade with the engine and write every grade row that changes (see the class comment).
     *
     * @param string|null $engine
     */
    private function write_grades(?string $engine): void {
        global $DB, $CFG, $USER;
        $l = $this->l;
        $n = count($l->items);
        $nu = count($l->userids);
        if (!$n || !$nu) {
            return;
        }
        $prof = $this->prof;
        $r = engine::regrade($l->coursejson, $l->grades, $l->flags, $nu, $engine);
        $prof->lap('engine');
        $final = array_values(unpack('e*', $r['final']));
        $has = $r['hasvalue'];
        $rmin = array_values(unpack('e*', $r['rawmin']));
        $rmax = array_values(unpack('e*', $r['rawmax']));
        $prof->lap('diff');
        // The stored rows (all columns: history rows copy them).
        $itemids = array_map(fn($it) => (int)$it->id, $l->items);
        [$isql, $params] = $DB->get_in_or_equal($itemids);
        $rows = [];
        $rs = $DB->get_recordset_select('grade_grades', "itemid $isql", $params);
        foreach ($rs as $g) {
            $rows[(int)$g->itemid][(int)$g->userid] = $g;
        }
        $rs->close();
        $prof->lap('load');
        $now = time();
        $history = empty($CFG->disablegradehistory);
        $histrows = [];
        $updates = [];
        $events = [];
        $users = [];
        // Rows Moodle's regrade creates (grade_grade::insert(), one by one) are queued here in Moodle's
        // order and inserted in bulk before anything reads them (the ids come out in the same order).
        $pending = [];
        $insert = function (int $itemid, int $userid, float $min, float $max) use (&$rows, &$pending, &$users) {
            $g = self::new_row($itemid, $userid, $min, $max);
            $pending[] = $g;
            $rows[$itemid][$userid] = $g;
            $users[$userid] = true;
            $this->inserted++;
        };
        $flush = function () use (&$pending, &$histrows, $history, $now, $USER, $prof) {
            $prof->lap('diff');
            if ($pending) {
                foreach (self::insert_rows($pending) as $g) {
                    if ($history) {
                        $histrows[] = self::history($g, GRADE_HISTORY_INSERT, 'system', $now, $USER->id);
                    }
                }
                $pending = [];
            }
            $prof->lap('grade_grades inserts');
        };
        // Users with a grade in the course (grade_item::compute() precreates their rows).
        $incourse = [];
        foreach ($rows as $byuser) {
            $incourse += $byuser;
        }
        $rowof = array_flip($l->userids);
        $modchanges = [];
        // Activity items first (they depend on nothing), then computed items in dependency order.
        foreach ($l->items as $i => $it) {
            $m = $this->model->items[$i];
            if ($m['formula'] !== null || $m['aggregate']) {
                continue;
            }
            if ($m['itemtype'] !== 'mod') {
                continue;
            }
            foreach ($rows[(int)$it->id] ?? [] as $userid => $g) {
                if (!empty($g->locked) || !empty($g->overridden) || !isset($rowof[$userid])) {
                    continue;
                }
                $k = $rowof[$userid] * $n + $i;
                $new = $has[$k] === "\1" ? $final[$k] : null;
                if (grade_floats_different($g->finalgrade === null ? null : (float)$g->finalgrade, $new)) {
                    $modchanges[] = [$g, $new];
                }
            }
        }
        // Activity grades: what grade_grade::update('system') does for each (grade_item::regrade_final_grades()),
        // in bulk: the row as Moodle's object writes it (required fields as read, the optional ones -
        // feedback, information - at grade_grade's defaults), timemodified kept, a history row, then
        // notify_changed()'s side effects (mod_side_effects()).
        $modupdates = [];
        foreach ($modchanges as [$g, $new]) {
            $modupdates[] = [$g, $new, (float)$g->rawgrademin, (float)$g->rawgrademax, 'system', \core\event\base::USER_OTHER];
        }
        $this->activitychanged = count($modupdates);
        $prof->lap('diff');
        $this->bulk_update($modupdates, null);
        $prof->lap('grade_grades updates');
        $this->apply_updates($modupdates, null, $histrows, $events, $users, $history, $now);
        $this->mod_side_effects($modupdates);
        $prof->lap('activity notify_changed');
        $aggregatedfor = [];
        $orders = [];
        ksort($incourse);
        foreach ($this->moodle_order() as $i) {
            $it = $l->items[$i];
            $m = $this->model->items[$i];
            $itemid = (int)$it->id;
            if ($m['formula'] !== null) {
                // grade_item::compute(): rows (grade_grade's default range 0..100) for every user with a
                // grade in the course; use_formula() then gives them the item's range.
                foreach (array_keys($incourse) as $userid) {
                    if (!isset($rows[$itemid][$userid])) {
                        $insert($itemid, $userid, 0.0, 100.0);
                    }
                }
                foreach ($rows[$itemid] ?? [] as $userid => $g) {
                    if (!empty($g->locked) || !empty($g->overridden) || !isset($rowof[$userid])) {
                        continue;
                    }
                    $k = $rowof[$userid] * $n + $i;
                    $new = $has[$k] === "\1" ? $final[$k] : null;
                    $rangechanged = (float)$g->rawgrademax != $m['grademax'] || (float)$g->rawgrademin != $m['grademin'];
                    if (grade_floats_different($g->finalgrade === null ? null : (float)$g->finalgrade, $new) || $rangechanged) {
                        $updates[] = [$g, $new, $m['grademin'], $m['grademax'], 'compute', null];
                    }
                }
                continue;
            }
            if (!$m['aggregate']) {
                continue;
            }
            // grade_category::generate_grades(): users with a row in the category's children or its total.
            $c = $m['own'];
            $deps = $this->model->categories[$c]['deps'];
            $catusers = $rows[$itemid] ?? [];
            foreach ($deps as $d) {
                $catusers += $rows[(int)$l->items[$d]->id] ?? [];
            }
            ksort($catusers);
            $cat = $this->model->categories[$c];
            // The rows generate_grades() reads, before aggregate_grades() creates the missing ones:
            // ties among equal grades sort in this order (which one gets the minimum, maximum or
            // median weight depends on it).
            $flush();
            $orders[$c] = $this->row_order($c, $rowof);
            $prof->lap('row order');
            foreach (array_keys($catusers) as $userid) {
                if (!isset($rows[$itemid][$userid])) {
                    $insert($itemid, $userid, 0.0, 100.0);
                }
                $g = $rows[$itemid][$userid];
                if (!empty($g->locked) || !empty($g->overridden) || !isset($rowof[$userid])) {
                    continue;
                }
                // aggregate_grades(): the children's missing rows are created (with their item's range).
                $hadrows = false;
                foreach ($deps as $d) {
                    $did = (int)$l->items[$d]->id;
                    if (isset($rows[$did][$userid])) {
                        $hadrows = true;
                    } else {
                        $insert($did, $userid, $this->model->items[$d]['grademin'], $this->model->items[$d]['grademax']);
                    }
                }
                $u = $rowof[$userid];
                $aggregatedfor[$c][$u] = $hadrows;
                $k = $u * $n + $i;
                $new = $has[$k] === "\1" ? $final[$k] : null;
                $old = $g->finalgrade === null ? null : (float)$g->finalgrade;
                [$newmin, $newmax] = self::aggregated($cat, $deps, $this->model->items, $hadrows,
                        array_map(fn($d) => ord($l->flags[$u * $n + $d]) & php_engine::EXCLUDED, $deps),
                        array_map(fn($d) => $has[$u * $n + $d] === "\1", $deps))
                    ? [$rmin[$k], $rmax[$k]] : [(float)$g->rawgrademin, (float)$g->rawgrademax];
                if (grade_floats_different($old, $new) || grade_floats_different((float)$g->rawgrademax, $newmax) ||
                        grade_floats_different((float)$g->rawgrademin, $newmin)) {
                    $updates[] = [$g, $new, $newmin, $newmax, 'aggregation', \core\event\base::USER_OTHER];
                }
            }
        }
        $flush();
        $statuses = $this->usage($aggregatedfor, $rows, $final, $has, $orders);
        $prof->lap('usage trace');
        // Bulk write: one UPDATE per chunk (CASE id WHEN ... ), then the history rows.
        $this->bulk_update($updates, $now);
        $prof->lap('grade_grades updates');
        $this->apply_updates($updates, $now, $histrows, $events, $users, $history, $now);
        $prof->lap('diff');
        if ($histrows) {
            $DB->insert_records('grade_grades_history', $histrows);
        }
        $prof->lap('history writes');
        // grade_category::set_usedinaggregation(): no history rows, no events.
        foreach (array_chunk($statuses, self::CHUNK) as $chunk) {
            $ids = [];
            $cs = $cw = '';
            $ps = $pw = [];
            foreach ($chunk as [$id, $status, $weight]) {
                $ids[] = $id;
                $cs .= " WHEN {$id} THEN ?";
                $ps[] = $status;
                $cw .= " WHEN {$id} THEN ?";
                $pw[] = $weight;
            }
            [$idsql, $idp] = $DB->get_in_or_equal($ids);
            $DB->execute("UPDATE {grade_grades} SET aggregationstatus = CASE id{$cs} END, aggregationweight = CASE id{$cw} END
                           WHERE id $idsql", array_merge($ps, $pw, $idp));
            $this->statuses += count($chunk);
        }
        $prof->lap('aggregationstatus writes');
        // grade_grade::notify_changed(): the availability cache of each user whose grade changed
        // (Moodle deletes the same cache entry once per changed grade).
        if (!empty($CFG->enableavailability) && class_exists('\availability_grade\callbacks')) {
            foreach (array_keys($users) as $userid) {
                \availability_grade\callbacks::grade_changed($userid);
            }
        }
        $prof->lap('availability cache');
        $this->pendingevents = $events;
    }

    /**
     * \core\event\user_graded for every changed grade (activity grades first, then the computed
     * items' in Moodle's regrade order), each created by Moodle's create_from_grade() and triggered
     * (observers, the standard log store included, run as for Moodle's regrade).
     */
    public function trigger_events(): void {
        $items = [];
        $create = 0.0;
        foreach ($this->pendingevents as [$g, $relateduser]) {
            $t = microtime(true);
            $gg = new \grade_grade($g, false);
            $itemid = (int)$g->itemid;
            if (!isset($items[$itemid])) {
                $items[$itemid] = \grade_item::fetch(['id' => $itemid]);
            }
            $gg->grade_item = $items[$itemid];
            $event = \core\event\user_graded::create_from_grade($gg, $relateduser);
            $create += microtime(true) - $t;
            $event->trigger();
            $this->events++;
        }
        $this->pendingevents = [];
        $this->prof->note('events: of which create', $create);
    }

    /**
     * The grade rows written: one UPDATE per chunk of rows (CASE id WHEN ...), with the columns
     * grade_grade::update() writes (finalgrade, the range, the optional fields at their defaults).
     *
     * @param array[] $updates [row, new final grade, min, max, source, relateduser]
     * @param int|null $now timemodified, or null to keep it (activity grades)
     */
    private function bulk_update(array $updates, ?int $now): void {
        global $DB;
        foreach (array_chunk($updates, self::CHUNK) as $chunk) {
            $ids = [];
            $cf = $cmin = $cmax = '';
            $p = [];
            $pmin = [];
            $pmax = [];
            foreach ($chunk as [$g, $new, $min, $max]) {
                $ids[] = (int)$g->id;
                $cf .= ' WHEN ' . (int)$g->id . ' THEN ' . ($new === null ? 'NULL' : '?');
                if ($new !== null) {
                    $p[] = grade_floatval($new);
                }
                $cmin .= ' WHEN ' . (int)$g->id . ' THEN ?';
                $pmin[] = grade_floatval($min);
                $cmax .= ' WHEN ' . (int)$g->id . ' THEN ?';
                $pmax[] = grade_floatval($max);
            }
            [$idsql, $idp] = $DB->get_in_or_equal($ids);
            $time = $now === null ? '' : 'timemodified = ?, ';
            $DB->execute("UPDATE {grade_grades} SET finalgrade = CASE id{$cf} END, rawgrademin = CASE id{$cmin} END,
                                 rawgrademax = CASE id{$cmax} END, {$time}feedback = NULL, feedbackformat = ?,
                                 information = NULL, informationformat = ?
                           WHERE id $idsql",
                array_merge($p, $pmin, $pmax, $now === null ? [] : [$now], [FORMAT_PLAIN, FORMAT_PLAIN], $idp));
        }
    }

    /**
     * The rows as bulk_update() left them, their history rows, events and users.
     *
     * @param array[] $updates [row, new final grade, min, max, source, relateduser]
     * @param int|null $time timemodified, or null to keep it
     * @param array $histrows
     * @param array $events
     * @param array $users
     * @param bool $history
     * @param int $now
     */
    private function apply_updates(array $updates, ?int $time, array &$histrows, array &$events, array &$users,
            bool $history, int $now): void {
        global $USER;
        foreach ($updates as [$g, $new, $min, $max, $source, $relateduser]) {
            $g->finalgrade = $new === null ? null : grade_floatval($new);
            $g->rawgrademin = grade_floatval($min);
            $g->rawgrademax = grade_floatval($max);
            if ($time !== null) {
                $g->timemodified = $time;
            }
            $g->feedback = $g->information = null;
            $g->feedbackformat = $g->informationformat = FORMAT_PLAIN;
            if ($history) {
                $histrows[] = self::history($g, GRADE_HISTORY_UPDATE, $source, $now, $USER->id);
            }
            $events[] = [$g, $relateduser];
            $users[(int)$g->userid] = true;
            $this->changed++;
        }
    }

    /**
     * grade_grade::notify_changed() and update_feedback_files() of changed activity grades, as Moodle
     * runs them after each update(): with completion enabled for the site the grade's item is loaded,
     * so its feedback files in the item's context are deleted (none to copy: the regrade gives no
     * feedback), and with completion enabled in the course the activity's completion is informed of
     * each grade (completion_info::inform_grade_changed(), Moodle's own code, per grade).  Per item,
     * what depends only on the item (context, course module) is looked up once.  The availability
     * cache is cleared per user with the other grades' (write_grades()).
     *
     * @param array[] $updates [row, new final grade, ...] activity grades only
     */
    private function mod_side_effects(array $updates): void {
        global $CFG, $DB;
        if (!$updates || empty($CFG->enablecompletion)) {
            return;
        }
        if (class_exists('restore_controller', false) && \restore_controller::is_executing()) {
            return;
        }
        require_once($CFG->libdir . '/completionlib.php');
        $byitem = [];
        foreach ($updates as [$g]) {
            $byitem[(int)$g->itemid][] = $g;
        }
        $course = get_course($this->courseid, false);
        $completion = new \completion_info($course);
        $fs = get_file_storage();
        foreach ($byitem as $itemid => $grades) {
            $item = \grade_item::fetch(['id' => $itemid]);
            if (!$item || !$item->is_external_item()) {
                continue;
            }
            $context = $item->get_context();
            foreach (array_chunk($grades, self::CHUNK) as $chunk) {
                [$isql, $ip] = $DB->get_in_or_equal(array_map(fn($g) => (int)$g->id, $chunk), SQL_PARAMS_NAMED, 'fbid');
                $fs->delete_area_files_select($context->id, GRADE_FILE_COMPONENT, GRADE_FEEDBACK_FILEAREA, $isql, $ip);
            }
            if (!$completion->is_enabled()) {
                continue;
            }
            $cm = get_coursemodule_from_instance($item->itemmodule, $item->iteminstance, $item->courseid);
            if (!$cm) {
                continue;
            }
            foreach ($grades as $g) {
                $gg = new \grade_grade($g, false);
                $gg->grade_item = $item;
                $completion->inform_grade_changed($cm, $item, $gg, false, false);
            }
        }
    }

    /**
     * A new grade_grades row as grade_grade::insert() writes it for the regrade, in the columns' order
     * and spelling of a row read back from the database.
     *
     * @param int $itemid
     * @param int $userid
     * @param float $min
     * @param float $max
     * @return object
     */
    private static function new_row(int $itemid, int $userid, float $min, float $max): object {
        return (object)['id' => null, 'itemid' => (string)$itemid, 'userid' => (string)$userid, 'rawgrade' => null,
            'rawgrademax' => sprintf('%.5F', $max), 'rawgrademin' => sprintf('%.5F', $min), 'rawscaleid' => null,
            'usermodified' => null, 'finalgrade' => null, 'hidden' => '0', 'locked' => '0', 'locktime' => '0',
            'exported' => '0', 'overridden' => '0', 'excluded' => '0', 'feedback' => null,
            'feedbackformat' => (string)FORMAT_PLAIN, 'information' => null, 'informationformat' => (string)FORMAT_PLAIN,
            'timecreated' => null, 'timemodified' => null, 'aggregationstatus' => 'unknown', 'aggregationweight' => null];
    }

    /**
     * Insert new rows in bulk, in the given order (the ids follow it), and give each its id.
     *
     * @param object[] $rows new_row()s
     * @return object[] the rows
     */
    private static function insert_rows(array $rows): array {
        global $DB;
        $DB->insert_records('grade_grades', array_map(function ($g) {
            $a = (array)$g;
            unset($a['id']);
            return $a;
        }, $rows));
        $want = [];
        foreach ($rows as $g) {
            $want[$g->itemid][$g->userid] = $g;
        }
        foreach ($want as $itemid => $byuser) {
            foreach (array_chunk(array_keys($byuser), self::CHUNK) as $chunk) {
                [$usql, $up] = $DB->get_in_or_equal($chunk);
                $rs = $DB->get_recordset_select('grade_grades', "itemid = ? AND userid $usql", array_merge([$itemid], $up), '',
                    'id, itemid, userid');
                foreach ($rs as $r) {
                    $byuser[$r->userid]->id = $r->id;
                }
                $rs->close();
            }
        }
        foreach ($rows as $g) {
            if ($g->id === null) {
                throw new \coding_exception("native regrade: grade row of item {$g->itemid}, user {$g->userid} not inserted");
            }
        }
        return $rows;
    }

    /**
     * The computed items in the order grade_regrade_final_grades() regrades them: passes over the
     * items in id order, each item as soon as the computed items it depends on are done.  The rows
     * the regrade creates then get their ids in Moodle's order, and each category's query sees the
     * rows Moodle's saw.
     *
     * @return int[] item indexes
     */
    private function moodle_order(): array {
        $m = $this->model;
        $pending = [];
        foreach ($m->order as $i) {
            $it = $m->items[$i];
            $deps = $it['formula'] !== null ? $it['fdeps'] : $m->categories[$it['own']]['deps'];
            $pending[$i] = array_values(array_filter($deps, fn($d) => in_array($d, $m->order, true)));
        }
        $ids = array_map(fn($i) => (int)$this->l->items[$i]->id, array_keys($pending));
        $pending = array_combine($ids, array_map(null, array_keys($pending), array_values($pending)));
        ksort($pending);
        $done = [];
        $out = [];
        while ($pending) {
            $progress = false;
            foreach ($pending as $id => [$i, $deps]) {
                foreach ($deps as $d) {
                    if (!isset($done[$d])) {
                        continue 2;
                    }
                }
                $done[$i] = true;
                $out[] = $i;
                unset($pending[$id]);
                $progress = true;
            }
            if (!$progress) {
                // The engine's dependency order has no cycle; this cannot happen.
                throw new \coding_exception('native regrade: no regrade order for the computed items');
            }
        }
        return $out;
    }

    /**
     * The order in which generate_grades()' query (same SQL) returns a category's child rows per
     * user, with the rows that exist now.  MariaDB's sort is not stable: ties on userid come in
     * an order only the database knows.
     *
     * @param int $c category index
     * @param array $rowof userid => user row
     * @return array user row => child item indexes
     */
    private function row_order(int $c, array $rowof): array {
        global $DB;
        $l = $this->l;
        $cat = $this->model->categories[$c];
        $index = [];
        foreach ($cat['deps'] as $d) {
            $index[(int)$l->items[$d]->id] = $d;
        }
        $gis = array_merge(array_keys($index), [(int)$l->items[$cat['item']]->id]);
        [$usql, $params] = $DB->get_in_or_equal($gis);
        $out = [];
        $rs = $DB->get_recordset_select('grade_grades', "itemid $usql", $params, 'userid', implode(',', self::REQUIRED));
        foreach ($rs as $r) {
            if (isset($index[(int)$r->itemid], $rowof[(int)$r->userid])) {
                $out[$rowof[(int)$r->userid]][] = $index[(int)$r->itemid];
            }
        }
        $rs->close();
        return $out;
    }

    /**
     * grade_grades.aggregationstatus/aggregationweight as grade_category::set_usedinaggregation() leaves
     * them: the PHP engine regrades every user again with its usage trace on (which grades were used,
     * with which weight, dropped, empty or extra credit), in Moodle's user order; its final grades
     * must equal the engine's (else nothing is written).
     *
     * @param array $aggregatedfor category index => user row => the user had a row in its children
     *     (the categories aggregate_grades() processed for the user, totals not locked or overridden)
     * @param array $rows itemid => userid => grade row (after the inserts)
     * @param float[] $final the engine's final grades
     * @param string $has the engine's hasvalue bytes
     * @param array $orders category index => user row => its children's item indexes in the order
     *     generate_grades() read their rows (row_order())
     * @return array[] [grade id, status, weight] for every row that changes
     */
    private function usage(array $aggregatedfor, array $rows, array $final, string $has, array $orders): array {
        $l = $this->l;
        $m = $this->model;
        $n = count($l->items);
        $cells = array_values(unpack('e*', $l->grades));
        $m->usage = [];
        $out = [];
        foreach ($l->userids as $u => $userid) {
            $order = [];
            foreach ($orders as $c => $byuser) {
                $order[$c] = $byuser[$u] ?? [];
            }
            foreach ($order as $c => $seen) {
                // Children without a row at that time come last (aggregate_grades() fills them in).
                $order[$c] = array_merge($seen, array_values(array_diff($m->categories[$c]['deps'], $seen)));
            }
            $m->usageorder = $order;
            $flags = array_map('ord', str_split(substr($l->flags, $u * $n, $n)));
            [$f] = $m->regrade_user(array_slice($cells, $u * $n, $n), $flags);
            for ($i = 0; $i < $n; $i++) {
                $e = $has[$u * $n + $i] === "\1" ? $final[$u * $n + $i] : null;
                if ($f[$i] !== $e) {
                    // In the database's row order the grades come out otherwise (ties): not modelled.
                    throw new unsupported_course($this->courseid, ["grades in the database's row order aggregate " .
                        "differently (user {$userid}, item {$l->items[$i]->id}: " . var_export($f[$i], true) . ' vs ' .
                        var_export($e, true) . ')']);
                }
            }
            foreach ($aggregatedfor as $c => $users) {
                if (!isset($users[$u]) || !isset($m->usage[$c])) {
                    continue;
                }
                $use = $users[$u] ? $m->usage[$c] : ['novalue' => [], 'dropped' => [], 'extra' => [], 'weights' => []];
                $members = $m->categories[$c]['deps'];
                foreach ($m->items as $j => $it) {
                    if ($it['parent'] === $c && !$it['aggregate']) {
                        $members[] = $j;
                    }
                }
                foreach (array_unique($members) as $d) {
                    $g = $rows[(int)$l->items[$d]->id][$userid] ?? null;
                    if ($g === null) {
                        continue;
                    }
                    $oldweight = $g->aggregationweight === null ? null : (float)$g->aggregationweight;
                    [$status, $weight] = self::status($use, $d, $oldweight);
                    if ($g->aggregationstatus !== $status || grade_floats_different($oldweight, $weight)) {
                        $out[] = [(int)$g->id, $status, $weight];
                    }
                }
            }
        }
        return $out;
    }

    /**
     * One grade's aggregationstatus and aggregationweight after set_usedinaggregation().
     *
     * @param array $use php_engine::$usage of its category for the user
     * @param int $d the grade's item index
     * @param float|null $oldweight its stored aggregationweight (extra credit without a weight keeps it)
     * @return array [status, weight]
     */
    public static function status(array $use, int $d, ?float $oldweight): array {
        if (isset($use['novalue'][$d])) {
            return ['novalue', 0.0];
        } else if (isset($use['dropped'][$d])) {
            return ['dropped', 0.0];
        } else if (isset($use['extra'][$d])) {
            return ['extra', $use['weights'][$d] ?? $oldweight];
        } else if (isset($use['weights'][$d])) {
            return ['used', $use['weights'][$d]];
        }
        return ['unknown', 0.0];
    }

    /**
     * Did aggregate_grades() aggregate any value for this user (then it writes the total's range,
     * even when the result is empty)?  Not when the user had no row in the category's children, no
     * child counted (excluded, or empty while only graded items are aggregated), or "drop the
     * lowest" dropped every one.
     *
     * @param array $cat the category (php_engine, forced settings applied)
     * @param int[] $deps its children's item indexes
     * @param array[] $items php_engine items
     * @param bool $hadrows the user had a row in one of the children
     * @param int[] $excluded per child: non-zero when excluded
     * @param bool[] $graded per child: has a final grade
     * @return bool
     */
    private static function aggregated(array $cat, array $deps, array $items, bool $hadrows, array $excluded,
            array $graded): bool {
        if (!$hadrows) {
            return false;
        }
        $counted = 0;
        $undroppable = false;
        $extraused = in_array($cat['aggregation'], [11, 12, 13], true);
        foreach ($deps as $j => $d) {
            if ($excluded[$j] || ($cat['aggregateonlygraded'] && !$graded[$j])) {
                continue;
            }
            $counted++;
            $undroppable = $undroppable || ($extraused && $items[$d]['aggregationcoef'] > 0);
        }
        if ($counted === 0) {
            return false;
        }
        return !($cat['canapply'] && $cat['droplow'] > 0 && $counted <= $cat['droplow'] && !$undroppable);
    }

    /**
     * A grade_grades_history row as grade_object::insert()/update() writes it.
     *
     * @param object $g the grade_grades row after the change
     * @param int $action GRADE_HISTORY_INSERT or GRADE_HISTORY_UPDATE
     * @param string|null $source
     * @param int $now
     * @param int $loggeduser
     * @return object
     */
    private static function history(object $g, int $action, ?string $source, int $now, int $loggeduser): object {
        $h = clone $g;
        unset($h->id, $h->timecreated);
        $h->action = $action;
        $h->oldid = (int)$g->id;
        $h->source = $source;
        $h->timemodified = $now;
        $h->loggeduser = $loggeduser;
        return $h;
    }
}
