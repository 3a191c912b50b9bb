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
 * Admin settings for local_nativegrades.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

if ($hassiteconfig) {
    $settings = new admin_settingpage('local_nativegrades', get_string('pluginname', 'local_nativegrades'));
    $settings->add(new admin_setting_configcheckbox('local_nativegrades/useextension',
        get_string('useextension', 'local_nativegrades'), get_string('useextension_desc', 'local_nativegrades'), 1));
    $settings->add(new admin_setting_configcheckbox('local_nativegrades/nativeregrade',
        get_string('nativeregrade', 'local_nativegrades'), get_string('nativeregrade_desc', 'local_nativegrades'), 1));
    $ADMIN->add('localplugins', $settings);
}
