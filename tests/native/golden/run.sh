#!/bin/bash
# Inside the golden container: start MariaDB, install Moodle once (cached in /cache), then run the
# harness that builds gradebooks with Moodle's API and regrades them with Moodle's own code.
set -euo pipefail
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
if [ ! -d /cache/mysql/mysql ]; then
  mkdir -p /cache/mysql && chown mysql:mysql /cache/mysql
  mariadb-install-db --user=mysql --datadir=/cache/mysql >/dev/null
fi
mariadbd --user=mysql --datadir=/cache/mysql --socket=/run/mysqld/mysqld.sock --skip-networking &
for _ in $(seq 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 1; done
echo "golden: MariaDB $(mariadb -N -e 'select version()')"
mkdir -p /var/www/moodle && rsync -a --delete --exclude /config.php /moodle-src/ /var/www/moodle/
cat > /var/www/moodle/config.php <<'PHP'
<?php
unset($CFG);
global $CFG;
$CFG = new stdClass();
$CFG->dbtype = 'mariadb';
$CFG->dblibrary = 'native';
$CFG->dbhost = 'localhost';
$CFG->dbname = 'moodle';
$CFG->dbuser = 'root';
$CFG->dbpass = '';
$CFG->prefix = 'mdl_';
$CFG->dboptions = ['dbsocket' => '/run/mysqld/mysqld.sock', 'dbcollation' => 'utf8mb4_unicode_ci'];
$CFG->wwwroot = 'http://localhost';
$CFG->dataroot = '/cache/moodledata';
$CFG->directorypermissions = 02777;
$CFG->debug = (E_ALL | E_STRICT);
$CFG->debugdisplay = 1;
require_once(__DIR__ . '/lib/setup.php');
PHP
mkdir -p /cache/moodledata && chmod 0777 /cache/moodledata
if ! mariadb -N -e "select count(*) from moodle.mdl_config" >/dev/null 2>&1; then
  echo "golden: installing Moodle into MariaDB (first run only)"
  mariadb -e "create database if not exists moodle default character set utf8mb4 collate utf8mb4_unicode_ci"
  php /var/www/moodle/admin/cli/install_database.php --agree-license --fullname=golden --shortname=golden \
      --adminpass='Golden-1-not-a-secret' --adminemail=admin@example.invalid >/tmp/install.log 2>&1 \
    || { tail -40 /tmp/install.log; exit 1; }
fi
cd /var/www/moodle
if [ -n "${GOLDEN_WRITEBACK:-}" ]; then
  # writeback.sh: local_nativegrades (/plugin) and the moodle_gradebook extension (/ext) installed.
  cp -a /plugin /var/www/moodle/local/nativegrades
  cp /ext/moodle_gradebook.so "$(php -r 'echo ini_get("extension_dir");')/"
  echo "extension=moodle_gradebook.so" > /etc/php/8.2/cli/conf.d/30-moodle_gradebook.ini
  php admin/cli/upgrade.php --non-interactive >/tmp/upgrade.log 2>&1 || { tail -20 /tmp/upgrade.log; exit 1; }
  echo "golden: local_nativegrades $(php admin/cli/cfg.php --component=local_nativegrades --name=version)," \
    "extension $(php -r 'echo moodle_gradebook_version();')"
fi
php /harness/moodle_harness.php "$@"
mariadb-admin --socket=/run/mysqld/mysqld.sock shutdown || true
