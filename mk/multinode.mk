# One site on many hosts (issue 11, the Compose side): two web nodes of one stand-in site as two Compose
# projects (mn-a, mn-b) on this engine, shared MariaDB + Redis + moodledata, a Caddy load balancer.
.PHONY: multinode-test
TEST_TARGETS += multinode-test

multinode-test: setup host standin ## Two nodes of one site: shared session, cache purge, one cron, a node killed, rolling upgrade
	$(TIMED) multinode-test $(VENV)/bin/pytest -x -q -p no:cacheprovider --durations=10 tests/multinode
