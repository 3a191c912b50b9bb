# Native gradebook area (issue 5): Rust core + ext-php-rs extension + PyO3 module + WASM widget.
# See docs/native.md.  Heavy builds are cached under $(NATIVE_CACHE) (cargo registry, target dirs,
# builder images) and the artifacts are rebuilt only when their sources change.
NATIVE_CACHE      ?= /var/cache/moodle-platform/native
NATIVE_ARTIFACTS  ?= $(NATIVE_CACHE)/artifacts
NATIVE_EXT        := $(NATIVE_ARTIFACTS)/php/moodle_gradebook.so
NATIVE_PKGS       := php8.2-cli php8.2-dev libclang-14-dev clang-14 chromium
NATIVE_PY_STAMP    = $(VENV)/.stamp-native-py-$(shell cat native/Cargo.lock native/gradebook-core/src/*.rs native/gradebook-py/src/*.rs native/gradebook-py/Cargo.toml | sha256sum | cut -c1-16)
NATIVE_PYTEST     := pytest -q -p no:cacheprovider

.PHONY: native-deps native-py native-artifacts native-lint native-test native-ship-test native-amd bench-native native-golden

native-deps: ## Host tools for the native tests (php8.2 cli/dev, clang, chromium, node) + playwright-core
	@missing=""; for p in $(NATIVE_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "native-deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; fi
	@# node + npm: any install will do (Debian's nodejs/npm, or a NodeSource nodejs that bundles npm).
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm; }
	@cd tests/native/widget && { [ -f node_modules/playwright-core/package.json ] || npm ci --no-audit --no-fund; }
	@cd scripts/amd-build && { [ -f node_modules/terser/package.json ] || npm ci --no-audit --no-fund; }

native-amd: ## The plugin's AMD build: amd/src -> amd/build/*.min.js + .map (babel + terser, as Moodle's grunt amd)
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "native-amd: needs node and npm (make native-deps)" >&2; exit 2; }
	@cd scripts/amd-build && { [ -f node_modules/terser/package.json ] || npm ci --no-audit --no-fund; }
	node scripts/amd-build/build.mjs moodle-plugins/local_nativegrades

native-py: setup $(NATIVE_PY_STAMP) ## PyO3 module (maturin wheel) into the venv, rebuilt when the core changes
$(NATIVE_PY_STAMP):
	rm -f $(VENV)/.stamp-native-py-*
	cd native/gradebook-py && $(VENV)/bin/maturin build --release --locked -q -o $(NATIVE_CACHE)/wheels
	$(VENV)/bin/pip install -q --force-reinstall --no-deps $$(ls -t $(NATIVE_CACHE)/wheels/moodle_gradebook_core-*.whl | head -1)
	touch $@

native-artifacts: setup host native-deps ## Role native_build: moodle_gradebook.so + plugin with WASM into $(NATIVE_ARTIFACTS)
	$(TIMED) native-artifacts ansible-playbook tests/native/role/build.yml -i inventories/local \
	  -e native_build_source_dir=$(ROOT) -e native_build_artifact_dir=$(NATIVE_ARTIFACTS) -e native_build_cache_dir=$(NATIVE_CACHE)

native-lint: setup ## clippy (warnings are errors) on every crate the host toolchain builds
	$(TIMED) native-clippy bash -c 'cd native && cargo clippy --locked --all-targets -p gradebook-core -p gradebook-php -p gradebook-py -p gradebook-wasm -- -D warnings'

native-test: setup native-deps native-py native-artifacts native-lint ## cargo test, parity/property, golden, bad input, role, widget in Chromium
	$(TIMED) native-cargo-test bash -c 'cd native && cargo test --locked -p gradebook-core'
	$(TIMED) native-pytest env NATIVE_EXT=$(NATIVE_EXT) NATIVE_ARTIFACTS=$(NATIVE_ARTIFACTS) NATIVE_CACHE=$(NATIVE_CACHE) \
	  $(NATIVE_PYTEST) --ignore=tests/native/shipping tests/native

# Issue 13 section 3 end to end: the site image built with moodle_image_native_gradebook from the stand-in
# (test fixture, not Moodle) and these artifacts, deployed by site.yml (Compose project nativeship, port
# 8790), verified by moodle_site, the extension regrading the golden gradebooks in the web container, the
# image run as the chart runs it, and the refusals (bad artifacts, image without the extension).
native-ship-test: setup host standin native-artifacts ## Native gradebook shipped: image + site.yml + in-container checks + chart-like run + refusals
	$(TIMED) native-shipping env NATIVE_ARTIFACTS=$(NATIVE_ARTIFACTS) \
	  $(NATIVE_PYTEST) -x --durations=5 tests/native/shipping

TEST_TARGETS += native-test native-ship-test

bench-native: setup native-deps native-py native-artifacts ## 1000 students x 60 items: PHP vs extension (+ Moodle's code with MOODLE_SRC), WASM size, widget time
	$(TIMED) bench-native env NATIVE_EXT=$(NATIVE_EXT) NATIVE_ARTIFACTS=$(NATIVE_ARTIFACTS) NATIVE_CACHE=$(NATIVE_CACHE) \
	  MOODLE_SRC=$(if $(MOODLE_SRC),$(abspath $(MOODLE_SRC)),) $(PY) tests/native/bench/bench_native.py

native-golden: setup native-deps ## Regenerate golden fixtures by running Moodle's own code: make native-golden MOODLE_SRC=/path/to/moodle-4.5
	@test -n "$(MOODLE_SRC)" || { echo "usage: make native-golden MOODLE_SRC=/path/to/moodle-4.5" >&2; exit 2; }
	$(TIMED) native-golden bash tests/native/golden/generate.sh $(abspath $(MOODLE_SRC))
