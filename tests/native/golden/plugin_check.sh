#!/bin/bash
# Check local_nativegrades inside a real Moodle: installs the built plugin into the golden harness's
# Moodle (see README.md; run generate.sh first), loads the moodle_gradebook extension, and runs
# cli/regrade_compare.php --against-stored on courses Moodle regraded itself.
#   bash tests/native/golden/plugin_check.sh /path/to/moodle-4.5 [courseid ...]
set -euo pipefail
MOODLE_SRC=${1:?usage: plugin_check.sh /path/to/moodle-4.5 [courseid ...]}
shift
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${NATIVE_CACHE:-/var/cache/moodle-platform/native}
ARTIFACTS=${NATIVE_ARTIFACTS:-$CACHE/artifacts}
docker run --rm --name native-plugin-check \
  -v "$MOODLE_SRC:/moodle-src:ro" -v "$CACHE/golden:/cache" -v "$ARTIFACTS:/artifacts:ro" \
  --entrypoint bash moodle-platform/native-golden:dev -c '
set -euo pipefail
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
mariadbd --user=mysql --datadir=/cache/mysql --socket=/run/mysqld/mysqld.sock --skip-networking >/dev/null 2>&1 &
for _ in $(seq 60); do mariadb -e "select 1" >/dev/null 2>&1 && break; sleep 1; done
mkdir -p /var/www/moodle && rsync -a --delete --exclude /config.php /moodle-src/ /var/www/moodle/
sed -n "/^cat > \/var\/www\/moodle\/config.php/,/^PHP$/p" /usr/local/bin/golden-run | sed "1d;\$d" > /var/www/moodle/config.php
cp -a /artifacts/moodle/local/nativegrades /var/www/moodle/local/nativegrades
cp /artifacts/php/moodle_gradebook.so "$(php -r "echo ini_get(\"extension_dir\");")/"
echo "extension=moodle_gradebook.so" > /etc/php/8.2/cli/conf.d/30-moodle_gradebook.ini
php -m | grep -x moodle_gradebook
php /var/www/moodle/admin/cli/upgrade.php --non-interactive >/tmp/upgrade.log 2>&1 || { tail -20 /tmp/upgrade.log; exit 1; }
echo "local_nativegrades installed: $(php /var/www/moodle/admin/cli/cfg.php --component=local_nativegrades --name=version)"
ids="$*"
[ -n "$ids" ] || ids=$(mariadb -N moodle -e "select id from mdl_course where id > 1 order by id desc limit 5")
status=0
for id in $ids; do
  php /var/www/moodle/local/nativegrades/cli/regrade_compare.php --courseid=$id --against-stored 2>&1 | grep -v "instance of this module" || status=1
done
mariadb-admin --socket=/run/mysqld/mysqld.sock shutdown || true
exit $status
' _ "$@"
