#!/bin/bash
# Inside the golden image (test_writeback.py): a throw-away MariaDB with the grade tables' schema as
# Moodle 4.5.6's installer made it (schema.sql), then run.php with the extension loaded.
#   entry.sh <fixture.json> <out.json>
set -euo pipefail
mkdir -p /run/mysqld /tmp/db && chown mysql:mysql /run/mysqld /tmp/db
mariadb-install-db --user=mysql --datadir=/tmp/db >/dev/null
mariadbd --user=mysql --datadir=/tmp/db --socket=/run/mysqld/mysqld.sock --skip-networking \
  --innodb-flush-log-at-trx-commit=0 --skip-log-bin >/tmp/mariadb.log 2>&1 &
for _ in $(seq 60); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.5; done
echo "writeback: MariaDB $(mariadb -N -e 'select version()')"
mariadb -e "create database moodle default character set utf8mb4 collate utf8mb4_unicode_ci"
mariadb moodle < /work/schema.sql
php -d extension=/ext/moodle_gradebook.so -d memory_limit=1G /work/run.php "$1" /plugin /golden \
  /run/mysqld/mysqld.sock "$2"
mariadb-admin --socket=/run/mysqld/mysqld.sock shutdown || true
