# Day-2 operations (issue 4): backups, restore, restore drills, upgrade with rollback, migration.
DAY2_PYTEST := $(VENV)/bin/pytest

.PHONY: day2-test day2-molecule day2-stack-test bench-backup
TEST_TARGETS += day2-test

day2-test: day2-molecule day2-stack-test ## Day-2: backup role (molecule) + backup/restore/drill/upgrade/migration on the stand-in stack

day2-molecule: setup host
	$(TIMED) day2-molecule molecule test -s day2

day2-stack-test: setup host day2-molecule
	$(TIMED) day2-stack $(DAY2_PYTEST) -x -q -p no:cacheprovider --durations=25 tests/day2

bench-backup: setup host ## Benchmark: ~1 GB moodledata, full + 1% incremental backup, restore to serving (prints figures)
	$(TIMED) bench-backup $(PY) scripts/bench_backup.py
