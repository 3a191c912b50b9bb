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

namespace local_nativegrades\task;

use local_nativegrades\local\regrader;

/**
 * Scheduled task: regrade, through the native engine, every course whose grades need an update
 * (its course grade item has needsupdate set), so the gradebook is current when a teacher opens it
 * instead of running Moodle's regrade behind a progress bar.  Off with the admin setting
 * local_nativegrades/nativeregrade.  Courses the native gradebook does not model are regraded by
 * Moodle's own code (logged with the reason).
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class regrade_courses extends \core\task\scheduled_task {
    /**
     * Name shown in the task list.
     *
     * @return string
     */
    public function get_name() {
        return get_string('taskregrade', 'local_nativegrades');
    }

    /**
     * Regrade the courses that need it.
     */
    public function execute() {
        global $DB;
        if (!regrader::enabled()) {
            mtrace('native regrade is turned off (local_nativegrades/nativeregrade)');
            return;
        }
        $courseids = $DB->get_fieldset_select('grade_items', 'courseid', "itemtype = 'course' AND needsupdate = 1");
        sort($courseids);
        mtrace('native regrade: ' . count($courseids) . ' course(s) need an update');
        foreach ($courseids as $courseid) {
            $r = regrader::regrade_course((int)$courseid);
            if ($r['mode'] === 'moodle') {
                mtrace("  course {$courseid}: regraded by Moodle's own code (not modelled: " . implode('; ', $r['reasons']) . ')');
            } else if ($r['mode'] === 'native') {
                mtrace(sprintf('  course %d: regraded natively (%s), %d grades changed, %d created, %.3f s', $courseid,
                    $r['engine'], $r['changed'], $r['inserted'], $r['seconds']));
            }
            if ($r['errors']) {
                mtrace("  course {$courseid}: errors: " . implode('; ', $r['errors']));
            }
        }
    }
}
