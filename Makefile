# moodle.platform — top-level entry points.  See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(abspath .)
VENV        := $(ROOT)/.venv
PY          := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
COLLECTION  := collections/ansible_collections/moodle/platform
STAMP       := $(VENV)/.stamp-$(shell cat requirements-dev.txt requirements/*.txt | sha256sum | cut -c1-16)
TIMED       := $(ROOT)/scripts/timed

# Areas append their test targets to TEST_TARGETS in mk/<area>.mk.
TEST_TARGETS :=
-include mk/*.mk

.PHONY: help setup standin host test-images roles-test roles-bad-inputs roles-docker-host roles-base-image collection-test collection-tarball collection-install lint unit test test-serial up
help:
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | sort

setup: $(STAMP) ## Python venv with the pinned tools (idempotent)
$(STAMP): requirements-dev.txt $(wildcard requirements/*.txt)
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	@rm -f $(VENV)/.stamp-* && touch $@

host: setup ## Prepare this machine: Docker engine + Compose v2 + base images (the same playbook users run)
	$(TIMED) host ansible-playbook playbooks/prepare_host.yml -i inventories/local

test-images: host ## Molecule instance images (systemd-capable and plain), from our base images
	$(TIMED) test-images ansible-playbook playbooks/test_images.yml -i inventories/local

roles-test: roles-bad-inputs roles-docker-host roles-base-image ## Molecule for docker_host and base_image, and their bad-input tests

# (three targets so that make test can spread them over its lanes)
roles-bad-inputs: test-images
	$(TIMED) bad-inputs pytest -q tests/roles
roles-docker-host: test-images
	$(TIMED) molecule-docker_host molecule test -s docker_host
roles-base-image: test-images
	$(TIMED) molecule-base_image molecule test -s base_image

collection-test: setup ## Build the tarball, install it offline outside the checkout, ansible-doc every module and role entry point, site's target checks
	$(TIMED) collection pytest -q tests/collection

collection-tarball: setup ## The collection tarball: build/collection/moodle-platform-<version>.tar.gz (rebuilt when the collection changes)
	@$(PY) scripts/collection.py tarball

collection-install: setup ## Install the tarball offline into /var/cache/moodle-platform/installed-collection/<hash> (prints the path)
	@$(PY) scripts/collection.py install

standin: ## Materialize the Moodle stand-in (test fixture, not Moodle) into build/moodle-standin
	$(PY) tests/fixtures/moodle-standin/materialize.py build/moodle-standin

# Tests that build images from the stand-in need its materialized tree.
day2-molecule day2-stack-test monitoring-molecule k8s-test: standin

lint: setup ## ansible-lint (production), yamllint (strict), ruff, argument_specs drift check
	$(TIMED) yamllint yamllint --strict .
	$(TIMED) ruff ruff check .
	$(TIMED) argspecs $(PY) scripts/check_argument_specs.py
	@cmp $(K8S_RULES_SRC) $(K8S_RULES_CHART) || \
	  { echo '$(K8S_RULES_CHART) differs from the monitoring rules: run make k8s-chart-rules' >&2; exit 1; }
	$(TIMED) ansible-lint ansible-lint --profile production
	$(TIMED) ansible-test-sanity $(ROOT)/scripts/ansible-test sanity
	$(TIMED) ansible-test-units $(ROOT)/scripts/ansible-test units
	$(TIMED) changelog $(PY) scripts/check_changelog.py

unit: setup ## Python unit tests of the collection
	$(TIMED) unit pytest -q $(COLLECTION)/tests/unit tests/unit

# After the shared set-up, `make test` runs its stages in three lanes at once (scripts/lanes; the machine is
# mostly waiting on containers, health checks and restic in the stack tests):
#   stacks:  the day-2 stand-in stack and what shares it (the EE static tests, then day-2 with the MCP and
#            EE/AWX job tests) - the long pole - then the AWS target on its emulator (no Docker; moved here
#            when k8s-e2e grew by the Compose <-> cluster and PostgreSQL scenarios);
#   compose: the other Compose stand-in deployments, each with its own projects, ports and image build caches
#            (the stack scenario with dev + prod overlays, the two-node site, the MariaDB upgrade site, the
#            PostgreSQL site), then the day-2 backup role's Molecule scenario and the roles' bad-input tests;
#   others:  the static checks and every other area, one after another (lint, unit, collection, Molecule
#            docker_host, k8s, k8s-e2e, monitoring, native); k8s-e2e's single-node cluster has its own
#            containerd, bridge and pod/Service subnets. Molecule base_image ends the stacks lane.
# Each lane keeps going after a failed stage (make -k), so one failure does not hide the rest of its lane;
# scripts/lanes reprints a failed lane's failure lines at the end of the output.
# Everything that installs with apt (dpkg takes one writer) or materialises shared inputs runs before the
# split; the lanes' sub-makes then take those targets as done (-o).
# The roles' scenarios and day-2's Molecule scenario are spread so that the lanes end together (ci28: stacks
# 3151 s, compose 3198 s, others ~3660 s with k8s-e2e; they moved 332 s out of others).
TEST_LANE_STACKS  := ee-test day2-stack-test aws-test
TEST_LANE_COMPOSE := compose-test multinode-test db-upgrade-test pg-test day2-molecule
TEST_LANE_FIRST   := lint unit collection-test roles-docker-host
TEST_STACKS_EXTRA := roles-base-image
TEST_COMPOSE_EXTRA := roles-bad-inputs
TEST_PREREQS      := setup host standin native-deps pg-deps monitoring-tools k8s-cluster-deps collection-tarball test-images
TEST_DONE_FLAGS    = $(foreach t,$(TEST_PREREQS),-o $(t))
test: $(TEST_PREREQS) ## Everything CI runs
	$(TIMED) test-lanes $(ROOT)/scripts/lanes \
	  "stacks=$(MAKE) --no-print-directory -k $(TEST_DONE_FLAGS) $(filter $(TEST_LANE_STACKS),$(TEST_TARGETS)) $(TEST_STACKS_EXTRA)" \
	  "compose=$(MAKE) --no-print-directory -k $(TEST_DONE_FLAGS) $(filter $(TEST_LANE_COMPOSE),$(TEST_TARGETS)) $(TEST_COMPOSE_EXTRA)" \
	  "others=$(MAKE) --no-print-directory -k $(TEST_DONE_FLAGS) $(TEST_LANE_FIRST) \
	    $(filter-out $(TEST_LANE_STACKS) $(TEST_LANE_COMPOSE),$(TEST_TARGETS))"
	@echo "make test: all stages passed"

test-serial: setup lint unit collection-test host roles-test $(TEST_TARGETS) ## The same stages one after another
	@echo "make test-serial: all stages passed"

# Which Moodle code `make up` (and acceptance, bench-stack) builds the image from, as plain role variables:
# MOODLE_SRC=/path/to/moodle-4.5 -> that tree; MOODLE_STANDIN=1 -> the stand-in test fixture (not Moodle,
# materialized by `make standin`); neither -> the role's default (git clone of MOODLE_405_STABLE).
MOODLE_STANDIN_ON := $(filter 1 true yes,$(MOODLE_STANDIN))
MOODLE_SOURCE_VARS := $(if $(MOODLE_SRC),-e moodle_image_source_type=local -e moodle_image_source_path=$(abspath $(MOODLE_SRC)),$(if \
  $(MOODLE_STANDIN_ON),-e moodle_image_source_type=local -e moodle_image_source_path=$(ROOT)/build/moodle-standin))

# DEV=1 adds the development overlay (Xdebug, debug display, Adminer): inventories/local-dev.yml.
up: setup $(if $(MOODLE_STANDIN_ON),standin) ## Deploy Moodle on the local Docker engine (http://127.0.0.1:8080); MOODLE_SRC=/path/to/moodle-4.5 or MOODLE_STANDIN=1; DEV=1 for the dev overlay
	$(TIMED) site ansible-playbook site.yml -i inventories/local $(MOODLE_SOURCE_VARS) $(if $(filter 1 true yes,$(DEV)),-e @inventories/local-dev.yml)
