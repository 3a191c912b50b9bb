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
 * Strings for local_nativegrades.
 *
 * @package    local_nativegrades
 * @copyright  moodle.platform contributors
 * @license    http://www.gnu.org/copyleft/gpl.html GNU GPL v3 or later
 */

defined('MOODLE_INTERNAL') || die();

$string['nativeregrade'] = 'Regrade courses natively';
$string['nativeregrade_desc'] = 'A scheduled task regrades every course whose grades need an update with the native engine, writing what Moodle\'s own regrade writes. Courses the native gradebook does not model are regraded by Moodle\'s own code.';
$string['pluginname'] = 'Native gradebook';
$string['taskregrade'] = 'Regrade courses that need it (native gradebook)';
$string['unsupportedcourse'] = 'The what-if calculator cannot compute this course exactly, so it shows no totals: {$a}. The gradebook reports show Moodle\'s own totals.';
$string['useextension'] = 'Use the moodle_gradebook extension';
$string['useextension_desc'] = 'When the PHP extension is loaded, regrade with it; otherwise the pure-PHP engine gives the same results.';
$string['whatif'] = 'What-if calculator';
$string['whatif_help'] = 'Type hypothetical grades to see how your category and course totals would change. Nothing is saved.';
$string['whatif_engine_wasm'] = 'Calculated in your browser';
$string['whatif_engine_server'] = 'Calculated on the server';
$string['privacy:metadata'] = 'The Native gradebook plugin does not store any personal data.';
