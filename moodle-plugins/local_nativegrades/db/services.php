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

/**
 * Web services of local_nativegrades (used by the what-if widget through core/ajax).
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$functions = [
    'local_nativegrades_get_user_gradebook' => [
        'classname' => 'local_nativegrades\external\get_user_gradebook',
        'description' => 'A user\'s gradebook structure, grades and current totals for the what-if calculator.',
        'type' => 'read',
        'ajax' => true,
        'capabilities' => 'moodle/grade:view',
    ],
    'local_nativegrades_whatif' => [
        'classname' => 'local_nativegrades\external\whatif',
        'description' => 'Totals for hypothetical grades (the widget\'s fallback when WebAssembly is unavailable). Saves nothing.',
        'type' => 'read',
        'ajax' => true,
        'capabilities' => 'moodle/grade:view',
    ],
];
