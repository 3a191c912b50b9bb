# MCP server (issue 12): the collection's day-2 operations as MCP tools for AI agents (mcp-server/,
# package moodle_platform_mcp, console script moodle-platform-mcp).
# `make test` runs its tests without a stage of its own: the Docker-free guardrail tests
# (tests/unit/test_mcp_guardrails.py) in `unit`, the SDK-client sessions against the stand-in site
# (tests/day2/test_mcp_server.py) inside `day2-stack-test`, on the day-2 deployment it already has.
# `make mcp-test` runs just those two (deploying the day-2 stand-in stack through the same fixture).
.PHONY: mcp-install mcp-test mcp-serve bench-mcp
MCP_STAMP := $(VENV)/.stamp-mcp-$(shell echo $(ROOT) | cat - mcp-server/pyproject.toml | sha256sum | cut -c1-12)

mcp-install: $(MCP_STAMP) ## Install the MCP server editable into .venv (console script moodle-platform-mcp)
$(MCP_STAMP): $(STAMP) mcp-server/pyproject.toml
	$(PY) -m pip install -q --no-deps -e mcp-server
	@rm -f $(VENV)/.stamp-mcp-* && touch $@

mcp-test: setup standin mcp-install ## MCP server: guardrail unit tests + SDK-client sessions (stdio, HTTP) on the day-2 stand-in stack
	$(TIMED) mcp-unit $(DAY2_PYTEST) -q -p no:cacheprovider tests/unit/test_mcp_guardrails.py
	$(TIMED) mcp-stack $(DAY2_PYTEST) -x -q -p no:cacheprovider tests/day2/test_mcp_server.py

mcp-serve: mcp-install ## Start the MCP server for the local site over stdio, read-only (ARGS='--allow-changes ...')
	moodle-platform-mcp --site moodle=$(ROOT)/inventories/local $(ARGS)

# The unit stage starts the console script the client configs (.roo/mcp.json, .mcp.json) name.
unit: mcp-install

bench-mcp: setup ## Figures: site_status latency and backup_now through MCP vs the module/playbook directly (running day-2 stack)
	$(TIMED) bench-mcp $(PY) scripts/bench_mcp.py
