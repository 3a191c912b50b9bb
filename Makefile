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

.PHONY: help setup host lint unit test up
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

lint: setup ## ansible-lint (production), yamllint (strict), ruff, argument_specs drift check
	$(TIMED) yamllint yamllint --strict .
	$(TIMED) ruff ruff check .
	$(TIMED) argspecs $(PY) scripts/check_argument_specs.py
	$(TIMED) ansible-lint ansible-lint --profile production

unit: setup ## Python unit tests of the collection
	$(TIMED) unit pytest -q $(COLLECTION)/tests/unit tests/unit

test: setup lint unit host $(TEST_TARGETS) ## Everything CI runs
	@echo "make test: all stages passed"

up: host ## Deploy Moodle on the local Docker engine (http://127.0.0.1:8080)
	$(TIMED) site ansible-playbook site.yml -i inventories/local
