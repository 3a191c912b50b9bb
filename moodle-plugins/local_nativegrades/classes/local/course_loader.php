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

    /**
     * Load a course.
     *
     * @param int $courseid
     * @param int[]|null $userids only these users (null: every user with a grade in the course)
     * @return course_loader
     */
    public static function load(int $courseid, ?array $userids = null): course_loader {
        global $DB;
        $l = new course_loader();
        $cats = $DB->get_records('grade_categories', ['courseid' => $courseid], 'depth, id');
        $items = $DB->get_records('grade_items', ['courseid' => $courseid], 'sortorder, id');
        // Site-forced category settings, as grade_category::apply_forced_settings() applies them.
        global $CFG;
        $forced = [];
        foreach (['aggregation', 'aggregateonlygraded', 'droplow', 'keephigh'] as $setting) {
            if (isset($CFG->{"grade_{$setting}"}, $CFG->{"grade_{$setting}_flag"}) &&
                    ((int)$CFG->{"grade_{$setting}_flag"} & 1) && $CFG->{"grade_{$setting}"} != -1) {
                $forced[$setting] = $setting === 'aggregateonlygraded' ? (bool)$CFG->{"grade_{$setting}"}
                    : (int)$CFG->{"grade_{$setting}"};
            }
        }
        $spec = ['forced' => (object)$forced, 'categories' => [], 'items' => []];
        foreach ($cats as $c) {
            $spec['categories'][] = ['id' => (int)$c->id, 'parent' => $c->parent ? (int)$c->parent : null,
                'aggregation' => (int)$c->aggregation, 'aggregateonlygraded' => (bool)$c->aggregateonlygraded,
                'droplow' => (int)$c->droplow, 'keephigh' => (int)$c->keephigh];
        }
        foreach ($items as $it) {
            if (!empty($it->outcomeid)) {
                continue; // Outcomes are not aggregated by default and not modelled.
            }
            $type = in_array($it->itemtype, ['course', 'category', 'manual'], true) ? $it->itemtype : 'mod';
            $spec['items'][] = [
                'id' => (int)$it->id, 'idnumber' => (string)$it->idnumber, 'itemtype' => $type,
                'categoryid' => (int)($type === 'course' || $type === 'category' ? $it->iteminstance : $it->categoryid),
                'gradetype' => (int)$it->gradetype, 'grademin' => (float)$it->grademin, 'grademax' => (float)$it->grademax,
                'multfactor' => (float)$it->multfactor, 'plusfactor' => (float)$it->plusfactor,
                'aggregationcoef' => (float)$it->aggregationcoef, 'aggregationcoef2' => (float)$it->aggregationcoef2,
                'weightoverride' => (bool)$it->weightoverride, 'hidden' => (bool)$it->hidden,
                'calculation' => empty($it->calculation) ? null : $it->calculation,
            ];
            $l->items[] = $it;
        }
        $index = [];
        foreach ($l->items as $i => $it) {
            $index[$it->id] = $i;
        }
        $n = count($l->items);
        if ($userids === null) {
            [$insql, $params] = $DB->get_in_or_equal(array_keys($index) ?: [0]);
            $userids = $DB->get_fieldset_sql("SELECT DISTINCT userid FROM {grade_grades} WHERE itemid $insql ORDER BY userid",
                $params);
        }
        $l->userids = array_map('intval', $userids);
        $cells = array_fill(0, $n * count($l->userids), 0.0);
        $flags = str_repeat("\0", $n * count($l->userids));
        $row = array_flip($l->userids);
        $rawrange = [];
        if ($l->userids && $n) {
            [$isql, $iparams] = $DB->get_in_or_equal(array_keys($index));
            [$usql, $uparams] = $DB->get_in_or_equal($l->userids);
            $rs = $DB->get_recordset_sql("SELECT itemid, userid, rawgrade, finalgrade, excluded, overridden, locked, hidden,
                                                    rawgrademin, rawgrademax
                                             FROM {grade_grades} WHERE itemid $isql AND userid $usql",
                array_merge($iparams, $uparams));
            foreach ($rs as $g) {
                $i = $index[$g->itemid];
                $k = $row[$g->userid] * $n + $i;
                $it = $l->items[$i];
                $fixed = !empty($g->overridden) || !empty($g->locked);
                $israw = !in_array($it->itemtype, ['course', 'category', 'manual'], true) && empty($it->calculation);
                $v = ($israw && !$fixed) ? $g->rawgrade : $g->finalgrade;
                $f = ($v !== null ? 1 : 0) | (!empty($g->excluded) ? 2 : 0) | ($fixed ? 4 : 0) | (!empty($g->hidden) ? 8 : 0);
                $cells[$k] = $v === null ? 0.0 : (float)$v;
                $flags[$k] = chr($f);
                if ($israw && $g->rawgrade !== null && !isset($rawrange[$i])) {
                    // The model keeps one raw range per item: the range the activity graded with.
                    $rawrange[$i] = [(float)$g->rawgrademin, (float)$g->rawgrademax];
                }
            }
            $rs->close();
        }
        foreach ($rawrange as $i => [$rmin, $rmax]) {
            $spec['items'][$i]['rawgrademin'] = $rmin;
            $spec['items'][$i]['rawgrademax'] = $rmax;
        }
        $l->coursejson = json_encode($spec, JSON_PRESERVE_ZERO_FRACTION);
        $l->grades = $cells ? pack('e*', ...$cells) : '';
        $l->flags = $flags;
        return $l;
    }
}
