# Day-2 operations (issue 4): backups, restore, restore drills, upgrade with rollback, migration.
DAY2_PYTEST := $(VENV)/bin/pytest

.PHONY: day2-test day2-molecule day2-stack-test db-upgrade-test bench-backup
# make test runs day2-molecule in the others lane (its own project molecule-day2) and the stack suite in the
# stacks lane (the long pole); day2-test keeps both for a by-hand run.
TEST_TARGETS += day2-molecule day2-stack-test db-upgrade-test

day2-test: day2-molecule day2-stack-test ## Day-2: backup role (molecule) + backup/restore/drill/upgrade/migration on the stand-in stack

day2-molecule: setup host
	$(TIMED) day2-molecule molecule test -s day2

day2-stack-test: setup host
	$(TIMED) day2-stack $(DAY2_PYTEST) -x -q -p no:cacheprovider --durations=25 tests/day2

# MariaDB 10.11 -> 11.8 with moodle.platform.db_upgrade on a stand-in site of its own (project dbup, ports
# 8680/8681/8683: tests/day2/inventory-dbupgrade over the day-2 inventory), so it runs beside the day-2 suite.
db-upgrade-test: setup host standin ## MariaDB 10.11 -> 11.8 (db_upgrade): injected failure rolls back, real upgrade keeps the data
	$(TIMED) db-upgrade-test env DAY2_PROJECT=dbup DAY2_WEB_PORT=8680 DAY2_INVENTORY_OVERLAY=tests/day2/inventory-dbupgrade \
	  $(DAY2_PYTEST) -x -q -p no:cacheprovider --durations=10 tests/day2/test_database_upgrade.py

bench-backup: setup host ## Benchmark: ~1 GB moodledata, full + 1% incremental backup, restore to serving (prints figures)
	$(TIMED) bench-backup $(PY) scripts/bench_backup.py
