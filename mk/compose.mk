# Docker Compose stack (issue 3): CI test, real-Moodle acceptance, benchmark.
.PHONY: compose-test acme-tools acceptance bench-stack

TEST_TARGETS += compose-test
COMPOSE_ACCEPTANCE_VARS := molecule/stack/acceptance/vars.yml

# The scenario runs from a copy outside the checkout, against the collection installed from its tarball,
# with the checkout hidden (scripts/collection.py run-hidden): what passes here works for users.
COMPOSE_TEST_DIR := /var/tmp/moodle-platform-installed-stack
compose-test: setup host acme-tools ## Molecule `stack`: moodle.platform.site from the installed tarball, stand-in, idempotence, testinfra
	$(TIMED) compose-test-stage $(PY) scripts/collection.py stage-molecule stack $(COMPOSE_TEST_DIR)
	$(TIMED) compose-test env $$($(PY) scripts/collection.py env) MOODLE_STANDIN_DIR=$(COMPOSE_TEST_DIR)/moodle-standin \
	  $(PY) scripts/collection.py run-hidden --cwd $(COMPOSE_TEST_DIR) -- molecule test -s stack

# Pebble, Let's Encrypt's ACME test server (Go module, not a real CA): the prod overlay's ACME test in
# compose-test gets its certificate from it (binary and image cached: ~10 s first, 0 s after).
acme-tools: host ## Pebble (ACME test server) from its Go module + image moodle-platform-test/pebble (cached)
	$(TIMED) acme-tools bash scripts/acme/build-pebble.sh

acceptance: setup host ## Real Moodle on the stack: make acceptance MOODLE_SRC=/path/to/moodle-4.5
	@test -n "$(MOODLE_SRC)" || { echo "usage: make acceptance MOODLE_SRC=/path/to/moodle-4.5 (a Moodle 4.5 code tree)"; exit 2; }
	$(TIMED) acceptance-deploy ansible-playbook playbooks/compose.yml -i inventories/local -e @$(COMPOSE_ACCEPTANCE_VARS) $(MOODLE_SOURCE_VARS)
	$(TIMED) acceptance-verify pytest -v -p no:cacheprovider molecule/stack/acceptance

bench-stack: setup host ## wrk: tuned vs OPcache-only vs stock (+ APCu MUC) real Moodle, 5 pages, 100 logged-in students (needs MOODLE_SRC); table + build/bench-stack/latency.png
	@test -n "$(MOODLE_SRC)" || { echo "usage: make bench-stack MOODLE_SRC=/path/to/moodle-4.5 (the benchmark is only meaningful with real Moodle)"; exit 2; }
	$(TIMED) bench-deploy ansible-playbook playbooks/compose.yml -i inventories/local -e @$(COMPOSE_ACCEPTANCE_VARS) -e compose_stack_bench=true \
	  $(if $(BENCH_EXPERIMENT),-e '{"compose_stack_bench_experiment": $(BENCH_EXPERIMENT)}') $(MOODLE_SOURCE_VARS)
	$(TIMED) bench-wrk-install ansible docker_hosts -i inventories/local -b -m ansible.builtin.apt -a "name=wrk state=present"
	$(TIMED) bench-stack $(PY) molecule/stack/bench/bench_stack.py $(BENCH_ARGS)
