# PostgreSQL as the site's database (issue 14): the stand-in site with moodle_db_type pgsql in its own
# Compose project (pgci, ports 8580-8583): install, login, backup -> destroy -> restore equality, drill,
# refusal of a MariaDB/PostgreSQL mix; day-2: upgrade A -> B with injected-failure rollback, restore refusal of a
# newer PostgreSQL major, migration of a PostgreSQL site (pg_dump plain / -Fc).  Prints the times (FIGURE lines).
.PHONY: pg-test
TEST_TARGETS += pg-test

pg-test: setup host standin ## PostgreSQL stand-in site: install, login, backup/destroy/restore equality, drill, cross-database refusal, upgrade with rollback, migration
	$(TIMED) pg-stack $(VENV)/bin/pytest -x -q -p no:cacheprovider --durations=10 tests/pg

.PHONY: bench-db-backup
bench-db-backup: setup host standin ## Benchmark (not a test): backup engine on PostgreSQL vs MariaDB, same stand-in data, one run (BENCH_DB_ROWS, BENCH_DB_ROUNDS, BENCH_KEEP=1)
	PYTHONPATH=$(ROOT)/tests $(PY) scripts/bench_db_backup.py
