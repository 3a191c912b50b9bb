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
 * A course the engines cannot regrade exactly: it uses a setting or table column they do not model
 * (see docs/native.md, "Settings the regrade reads").  Callers then use Moodle's own code, or say
 * that they cannot answer; they never fall back to a wrong result.
 *
 * Standalone (\RuntimeException, not moodle_exception) so the loader's checks run outside Moodle too.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */
class unsupported_course extends \RuntimeException {
    /** @var string[] one sentence per unmodelled setting, each naming it */
    public array $reasons;
    /** @var int */
    public int $courseid;

    /**
     * Constructor.
     *
     * @param int $courseid
     * @param string[] $reasons
     */
    public function __construct(int $courseid, array $reasons) {
        $this->courseid = $courseid;
        $this->reasons = array_values($reasons);
        parent::__construct("course {$courseid} cannot be regraded by the native gradebook (Moodle's own regrade " .
            "applies): " . implode('; ', $this->reasons));
    }
}
