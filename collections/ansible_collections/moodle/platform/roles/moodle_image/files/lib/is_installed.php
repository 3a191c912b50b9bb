<?php
// moodle.platform: exit 0 when the Moodle database is installed, 3 when it is not, 1 on error.
define('CLI_SCRIPT', true);
define('CACHE_DISABLE_ALL', true);
require('/var/www/moodle/config.php');
exit(during_initial_install() ? 3 : 0);
