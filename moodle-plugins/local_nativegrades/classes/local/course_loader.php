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
 * Reads a course's gradebook from Moodle's tables into the engine's input: the course description
 * (categories and items in sort order) and the users x items matrix of stored values and flags.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class course_loader {
    /** @var array[] item records in sort order */
    public array $items = [];
    /** @var int[] user ids, row order of the matrix */
    public array $userids = [];
    /** @var string course description JSON */
    public string $coursejson = '';
    /** @var string pack('e*') cells */
    public string $grades = '';
    /** @var string flag bytes */
    public string $flags = '';

    /** GRADE_MIN_MAX_FROM_GRADE_GRADE (lib/grade/constants.php): "initial grade min/max". */
    const MINMAX_FROM_GRADE_GRADE = 2;

    /**
     * Load a course from Moodle's tables and settings.
     *
     * @param int $courseid
     * @param int[]|null $userids only these users (null: every user with a grade in the course)
     * @return course_loader
     * @throws unsupported_course when the course uses a setting the engines do not model
     */
    public static function load(int $courseid, ?array $userids = null): course_loader {
        global $DB, $CFG;
        $cats = $DB->get_records('grade_categories', ['courseid' => $courseid], 'depth, id');
        $items = $DB->get_records('grade_items', ['courseid' => $courseid], 'sortorder, id');
        $coursesettings = $DB->get_records_menu('grade_settings', ['courseid' => $courseid], '', 'name, value');
        // Per-module facts adjust_raw_grade() and is_locked() read through Moodle's APIs.
        require_once($CFG->dirroot . '/course/lib.php');
        $manualrescale = [];
        $pendingdeletion = [];
        foreach ($items as $it) {
            if ($it->itemtype !== 'mod' || empty($it->itemmodule)) {
                continue;
            }
            if (!isset($manualrescale[$it->itemmodule])) {
                $manualrescale[$it->itemmodule] =
                    component_callback_exists('mod_' . $it->itemmodule, 'rescale_activity_grades') !== false;
            }
            if (course_module_instance_pending_deletion($courseid, $it->itemmodule, $it->iteminstance)) {
                $pendingdeletion[] = (int)$it->id;
            }
        }
        $itemids = array_keys($items);
        if ($userids === null) {
            [$insql, $params] = $DB->get_in_or_equal($itemids ?: [0]);
            $userids = $DB->get_fieldset_sql("SELECT DISTINCT userid FROM {grade_grades} WHERE itemid $insql ORDER BY userid",
                $params);
        }
        $grades = [];
        if ($userids && $itemids) {
            [$isql, $iparams] = $DB->get_in_or_equal($itemids);
            [$usql, $uparams] = $DB->get_in_or_equal($userids);
            $grades = $DB->get_recordset_sql("SELECT itemid, userid, rawgrade, finalgrade, excluded, overridden, locked, locktime,
                                                     hidden, rawgrademin, rawgrademax
                                                FROM {grade_grades} WHERE itemid $isql AND userid $usql",
                array_merge($iparams, $uparams));
        }
        try {
            return self::from_records($courseid, $CFG, $coursesettings, $cats, $items, $grades, $userids,
                array_keys(array_filter($manualrescale)), $pendingdeletion);
        } finally {
            if ($grades instanceof \moodle_recordset) {
                $grades->close();
            }
        }
    }

    /**
     * The course's effective "Min and max grades used in calculation", as
     * grade_grade::get_grade_min_and_max() reads it: the course setting, else the site default
     * grade_minmaxtouse; only 2 (initial grade min/max) differs from the default behaviour.
     *
     * @param object $cfg $CFG
     * @param array $coursesettings grade_settings of the course, name => value
     * @return int 1 or 2
     */
    public static function minmaxtouse(object $cfg, array $coursesettings): int {
        $v = $coursesettings['minmaxtouse'] ?? $cfg->grade_minmaxtouse ?? null;
        return $v !== null && $v == self::MINMAX_FROM_GRADE_GRADE ? self::MINMAX_FROM_GRADE_GRADE : 1;
    }

    /**
     * Every setting and column in the course's records that changes Moodle's regrade but is not
     * modelled by the engines (docs/native.md, "Settings the regrade reads").
     *
     * @param int $courseid
     * @param object $cfg $CFG (site settings; Moodle loads every core config value into it)
     * @param array $coursesettings grade_settings of the course, name => value
     * @param object[] $items grade_items rows of the course
     * @param int[] $pendingdeletion ids of items whose course module is being deleted
     * @return string[] one sentence per unmodelled setting, naming it (empty: the engines model the course)
     */
    public static function refusals(int $courseid, object $cfg, array $coursesettings, array $items,
            array $pendingdeletion): array {
        $reasons = [];
        // minmaxtouse = 2 and unlimitedgrades are modelled (spec 'site'; golden/cases_site.json holds
        // Moodle's own regrades of them); only what the model cannot represent is refused (below).
        // grade_item::bounded_grade(): unlimitedgrades is modelled with a numeric factor.
        if (!empty($cfg->unlimitedgrades) && isset($cfg->gradeoverhundredprocentmax) &&
                !is_numeric($cfg->gradeoverhundredprocentmax)) {
            $reasons[] = 'site setting gradeoverhundredprocentmax = ' . var_export($cfg->gradeoverhundredprocentmax, true) .
                ' (not a number, with unlimitedgrades on) is not modelled';
        }
        // grade_category::aggregate_grades(), apply_limit_rules(), auto_update_*() and use_formula():
        // a frozen gradebook runs the code of an older Moodle.
        $freeze = "gradebook_calculations_freeze_{$courseid}";
        if (isset($cfg->$freeze) && (string)$cfg->$freeze !== '') {
            $reasons[] = "site setting {$freeze} = {$cfg->$freeze} (the course's gradebook calculations are frozen " .
                'at an older Moodle\'s behaviour) is not modelled';
        }
        $scales = $outcomes = $locked = $locktime = $deleting = [];
        foreach ($items as $it) {
            if ((int)$it->gradetype === 2) {
                $scales[] = (int)$it->id;
            }
            if (!empty($it->outcomeid)) {
                $outcomes[] = (int)$it->id;
            }
            if (!empty($it->locked)) {
                $locked[] = (int)$it->id;
            }
            if (!empty($it->locktime)) {
                $locktime[] = (int)$it->id;
            }
            if (in_array((int)$it->id, $pendingdeletion, true)) {
                $deleting[] = (int)$it->id;
            }
        }
        // grade_item::depends_on(), grade_category::auto_update_weights().
        if ($scales && empty($cfg->grade_includescalesinaggregation)) {
            $reasons[] = 'site setting grade_includescalesinaggregation is off (scale items ' . implode(', ', $scales) .
                ' left out of aggregation) is not modelled';
        }
        // depends_on() with enableoutcomes / grade_categories.aggregateoutcomes; regrade_final_grades().
        if ($outcomes) {
            $reasons[] = 'outcome grade items (grade_items.outcomeid: items ' . implode(', ', $outcomes) .
                '; enableoutcomes, grade_categories.aggregateoutcomes) are not modelled';
        }
        // grade_item::is_locked(): a locked item keeps its grades, its category is not aggregated.
        if ($locked) {
            $reasons[] = 'locked grade items (grade_items.locked: items ' . implode(', ', $locked) . ') are not modelled';
        }
        if ($locktime) {
            $reasons[] = 'grade items locked at a date (grade_items.locktime: items ' . implode(', ', $locktime) .
                ') are not modelled';
        }
        if ($deleting) {
            $reasons[] = 'grade items of course modules being deleted (course_modules.deletioninprogress: items ' .
                implode(', ', $deleting) . ', locked by grade_item::is_locked()) are not modelled';
        }
        return $reasons;
    }

    /**
     * Build the engine's input from a course's records (what load() read); refuses a course the
     * engines do not model.
     *
     * @param int $courseid
     * @param object $cfg $CFG
     * @param array $coursesettings grade_settings of the course, name => value
     * @param object[] $cats grade_categories rows, parents before children
     * @param object[] $items grade_items rows in sort order
     * @param iterable $grades grade_grades rows (itemid, userid, rawgrade, finalgrade, excluded, overridden,
     *     locked, locktime, hidden, rawgrademin, rawgrademax) of these items and users
     * @param int[] $userids row order of the matrix
     * @param string[] $manualrescale modules with a rescale_activity_grades callback (adjust_raw_grade()
     *     does not rescale their raw grades)
     * @param int[] $pendingdeletion ids of items whose course module is being deleted
     * @return course_loader
     * @throws unsupported_course
     */
    public static function from_records(int $courseid, object $cfg, array $coursesettings, array $cats, array $items,
            iterable $grades, array $userids, array $manualrescale = [], array $pendingdeletion = []): course_loader {
        $reasons = self::refusals($courseid, $cfg, $coursesettings, $items, $pendingdeletion);
        $l = new course_loader();
        // Site-forced category settings, as grade_category::apply_forced_settings() applies them.
        $forced = [];
        foreach (['aggregation', 'aggregateonlygraded', 'droplow', 'keephigh'] as $setting) {
            if (isset($cfg->{"grade_{$setting}"}, $cfg->{"grade_{$setting}_flag"}) &&
                    ((int)$cfg->{"grade_{$setting}_flag"} & 1) && $cfg->{"grade_{$setting}"} != -1) {
                $forced[$setting] = $setting === 'aggregateonlygraded' ? (bool)$cfg->{"grade_{$setting}"}
                    : (int)$cfg->{"grade_{$setting}"};
            }
        }
        // grade_item::bounded_grade(): a value grade may reach max x gradeoverhundredprocentmax (default 10).
        $site = ['unlimitedgrades' => !empty($cfg->unlimitedgrades),
            'gradeoverhundredprocentmax' => isset($cfg->gradeoverhundredprocentmax) && is_numeric($cfg->gradeoverhundredprocentmax)
                ? (float)$cfg->gradeoverhundredprocentmax : 10.0];
        $minmaxtouse = self::minmaxtouse($cfg, $coursesettings);
        $site['minmaxtouse'] = $minmaxtouse;
        $spec = ['forced' => (object)$forced, 'site' => $site, 'categories' => [], 'items' => []];
        foreach ($cats as $c) {
            $spec['categories'][] = ['id' => (int)$c->id, 'parent' => $c->parent ? (int)$c->parent : null,
                'aggregation' => (int)$c->aggregation, 'aggregateonlygraded' => (bool)$c->aggregateonlygraded,
                'droplow' => (int)$c->droplow, 'keephigh' => (int)$c->keephigh];
        }
        // Raw grades are used only by activity items (grade_item::is_raw_used(): itemtype 'mod', not
        // calculated); any other item type keeps its final grade, like a manual item.
        $rawused = [];
        foreach (array_values($items) as $i => $it) {
            $type = in_array($it->itemtype, ['course', 'category', 'manual'], true) ? $it->itemtype :
                ($it->itemtype === 'mod' ? 'mod' : 'manual');
            $spec['items'][] = [
                'id' => (int)$it->id, 'idnumber' => (string)$it->idnumber, 'itemtype' => $type,
                'categoryid' => (int)($type === 'course' || $type === 'category' ? $it->iteminstance : $it->categoryid),
                'gradetype' => (int)$it->gradetype, 'grademin' => (float)$it->grademin, 'grademax' => (float)$it->grademax,
                'multfactor' => (float)$it->multfactor, 'plusfactor' => (float)$it->plusfactor,
                'aggregationcoef' => (float)$it->aggregationcoef, 'aggregationcoef2' => (float)$it->aggregationcoef2,
                'weightoverride' => (bool)$it->weightoverride, 'hidden' => (bool)$it->hidden,
                'calculation' => empty($it->calculation) ? null : $it->calculation,
            ];
            $rawused[$i] = $type === 'mod' && empty($it->calculation);
            $l->items[] = $it;
        }
        $index = [];
        foreach ($l->items as $i => $it) {
            $index[$it->id] = $i;
        }
        $n = count($l->items);
        $l->userids = array_map('intval', $userids);
        $cells = array_fill(0, $n * count($l->userids), 0.0);
        $flags = str_repeat("\0", $n * count($l->userids));
        $row = array_flip($l->userids);
        $rawrange = [];
        $rangediffers = [];
        $gradelocktime = [];
        // minmaxtouse = 2: each grade's row range (grade_grade::get_grade_min_and_max()).
        $rowrange = [];
        $rowcount = [];
        $rowdiffers = [];
        $calcfixed = [];
        foreach ($grades as $g) {
            if (!isset($index[$g->itemid], $row[$g->userid])) {
                continue;
            }
            $i = $index[$g->itemid];
            $k = $row[$g->userid] * $n + $i;
            if (!empty($g->locktime)) {
                $gradelocktime[$l->items[$i]->id] = true;
            }
            $fixed = !empty($g->overridden) || !empty($g->locked);
            $it = $l->items[$i];
            $range = [(float)$g->rawgrademin, (float)$g->rawgrademax];
            if (!empty($it->calculation)) {
                // use_formula() gives a calculated grade its item's range, unless the grade is
                // overridden or locked (then the stored range stays).
                if ($fixed && $range !== [(float)$it->grademin, (float)$it->grademax]) {
                    $calcfixed[$it->id] = true;
                }
            } else if (!in_array($it->itemtype, ['course', 'category'], true)) {
                $rowcount[$i] = ($rowcount[$i] ?? 0) + 1;
                if (!isset($rowrange[$i])) {
                    $rowrange[$i] = $range;
                } else if ($rowrange[$i] !== $range) {
                    $rowdiffers[$it->id] = true;
                }
            }
            $v = ($rawused[$i] && !$fixed) ? $g->rawgrade : $g->finalgrade;
            $f = ($v !== null ? 1 : 0) | (!empty($g->excluded) ? 2 : 0) | ($fixed ? 4 : 0) | (!empty($g->hidden) ? 8 : 0);
            $cells[$k] = $v === null ? 0.0 : (float)$v;
            $flags[$k] = chr($f);
            if ($rawused[$i] && $g->rawgrade !== null && !$fixed) {
                // The model keeps one raw range per item (adjust_raw_grade() reads each row's).
                $range = [(float)$g->rawgrademin, (float)$g->rawgrademax];
                if (!isset($rawrange[$i])) {
                    $rawrange[$i] = $range;
                } else if ($rawrange[$i] !== $range && !in_array($l->items[$i]->itemmodule ?? null, $manualrescale, true)) {
                    $rangediffers[$l->items[$i]->id] = true;
                }
            }
        }
        if ($gradelocktime) {
            $reasons[] = 'grades locked at a date (grade_grades.locktime, in items ' .
                implode(', ', array_keys($gradelocktime)) . ') are not modelled';
        }
        if ($minmaxtouse === self::MINMAX_FROM_GRADE_GRADE) {
            $missing = [];
            $rescaled = [];
            foreach ($rowrange as $i => $range) {
                $it = $l->items[$i];
                if ($range === [(float)$it->grademin, (float)$it->grademax]) {
                    continue;
                }
                if ($rowcount[$i] < count($l->userids)) {
                    // aggregate_grades() creates the missing rows with the item's range, after it
                    // read the ranges of the others.
                    $missing[] = $it->id;
                }
                if (in_array($it->itemmodule ?? null, $manualrescale, true)) {
                    $rescaled[] = $it->id;
                }
            }
            $with = ' (with minmaxtouse = 2) are not modelled';
            if ($rowdiffers) {
                $reasons[] = 'grades of one item stored with different ranges (grade_grades.rawgrademin/rawgrademax ' .
                    'differ between users of items ' . implode(', ', array_keys($rowdiffers)) . ')' . $with;
            }
            if ($missing) {
                $reasons[] = 'users without a grade row in items stored with a range other than the item\'s (items ' .
                    implode(', ', $missing) . ')' . $with;
            }
            if ($rescaled) {
                $reasons[] = 'grades of modules that rescale their own grades stored with a range other than the ' .
                    'item\'s (items ' . implode(', ', $rescaled) . ')' . $with;
            }
            if ($calcfixed) {
                $reasons[] = 'overridden or locked calculated grades stored with a range other than the item\'s (items ' .
                    implode(', ', array_keys($calcfixed)) . ')' . $with;
            }
            $rangediffers = [];
        }
        if ($rangediffers) {
            $reasons[] = 'raw grades of one item graded out of different ranges (grade_grades.rawgrademin/rawgrademax ' .
                'differ between users of items ' . implode(', ', array_keys($rangediffers)) . ') are not modelled';
        }
        if ($reasons) {
            throw new unsupported_course($courseid, $reasons);
        }
        if ($minmaxtouse === self::MINMAX_FROM_GRADE_GRADE) {
            // The model's raw range of an item is then every one of its rows' range.
            $rawrange = $rowrange;
        }
        foreach ($rawrange as $i => [$rmin, $rmax]) {
            $it = $l->items[$i];
            if (in_array($it->itemmodule ?? null, $manualrescale, true)) {
                // adjust_raw_grade(): a module that rescales its own grades (rescale_activity_grades,
                // e.g. mod_assign) is not standardised to the item's range: the item's range is the raw one.
                [$rmin, $rmax] = [(float)$it->grademin, (float)$it->grademax];
            }
            $spec['items'][$i]['rawgrademin'] = $rmin;
            $spec['items'][$i]['rawgrademax'] = $rmax;
        }
        $l->coursejson = json_encode($spec, JSON_PRESERVE_ZERO_FRACTION);
        $l->grades = $cells ? pack('e*', ...$cells) : '';
        $l->flags = $flags;
        return $l;
    }
}
