# PostgreSQL as the site's database (issue 14): the stand-in site with moodle_db_type pgsql in its own
# Compose project (pgci, ports 8580-8583): install, login, backup -> destroy -> restore equality, drill,
# refusal of a MariaDB/PostgreSQL mix.  Prints the backup/restore/drill times (FIGURE lines).
.PHONY: pg-test pg-deps
TEST_TARGETS += pg-test

# Host tools tests/pg calls itself: restic (it reads the repositories; test_engine_direct also runs the engine on
# the host, which calls restic) and Debian's PostgreSQL client (bookworm: 15, older than the server: the
# engine's refusal of an older pg_dump is checked with it).  The backup role installs restic too, but only
# when the stack fixture deploys, after test_engine_direct ran - on a fresh host that test found no restic.
PG_HOST_PKGS := restic postgresql-client
pg-deps: ## Host packages tests/pg uses directly (restic, postgresql-client; idempotent)
	@missing=""; for p in $(PG_HOST_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "pg-deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "pg-deps: all installed"; fi

pg-test: setup host standin pg-deps ## PostgreSQL stand-in site: install, login, backup/destroy/restore equality, drill, cross-database refusal
	$(TIMED) pg-stack $(VENV)/bin/pytest -x -q -p no:cacheprovider --durations=10 tests/pg

.PHONY: bench-db-backup
bench-db-backup: setup host standin ## Benchmark (not a test): backup engine on PostgreSQL vs MariaDB, same stand-in data, one run (BENCH_DB_ROWS, BENCH_DB_ROUNDS, BENCH_KEEP=1)
	PYTHONPATH=$(ROOT)/tests $(PY) scripts/bench_db_backup.py
