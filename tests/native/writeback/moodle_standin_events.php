<?php
// STAND-IN (test fixture, not Moodle): the two events local_nativegrades' regrader triggers, logged
// with the fields Moodle's \core\event\user_graded::create_from_grade() gives them (see
// moodle_standin.php).

namespace core\event {
    /** Stand-in of \core\event\base: the constant the regrader uses. */
    class base {
        /** Moodle's base::USER_OTHER. */
        const USER_OTHER = -1;
    }

    /** Stand-in of \core\event\user_graded. */
    class user_graded extends base {
        private array $data;

        public static function create_from_grade(\grade_grade $grade, $userid = null): user_graded {
            global $USER;
            $e = new user_graded();
            $e->data = ['objectid' => (int)$grade->id, 'relateduserid' => (int)$grade->userid,
                'userid' => $userid ?? (int)$USER->id, 'courseid' => (int)$grade->grade_item->courseid,
                'other' => ['itemid' => $grade->itemid, 'overridden' => !empty($grade->overridden),
                    'finalgrade' => $grade->finalgrade]];
            return $e;
        }

        public function trigger(): void {
            global $DB;
            // Traced (run.php): Moodle's regrade triggers these outside any transaction, so must the regrader.
            $GLOBALS['STANDIN_TRACE'][] = $DB->is_transaction_started() ? 'user_graded in transaction' : 'user_graded';
            \standin_log('\\core\\event\\user_graded', 'grade_grades', $this->data['objectid'], (int)$this->data['userid'],
                $this->data['relateduserid'], $this->data['courseid'], $this->data['other']);
        }
    }
}
