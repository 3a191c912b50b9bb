# Monitoring area (issue 7): alert rules, Prometheus config, dashboards.  Included by the Makefile.
# promtool comes from Debian's prometheus package, unpacked (not installed: no daemon on the host)
# into a cache keyed by the package version.
MONITORING_CACHE   ?= /var/cache/moodle-platform/monitoring
MONITORING_PROM_VERSION := 2.42.0+ds-5+deb12u1
PROMTOOL           := $(MONITORING_CACHE)/prometheus-$(MONITORING_PROM_VERSION)/usr/bin/promtool
MONITORING_PROMETHEUS ?= http://127.0.0.1:9095

.PHONY: monitoring-tools monitoring-unit monitoring-molecule monitoring-test dashboards-check dashboards-png

monitoring-tools: $(PROMTOOL) ## promtool from Debian's prometheus package (idempotent)
$(PROMTOOL):
	@mkdir -p $(MONITORING_CACHE)/deb
	@if ! ls $(MONITORING_CACHE)/deb/prometheus_*.deb >/dev/null 2>&1; then \
	  apt-get update -qq && cd $(MONITORING_CACHE)/deb && apt-get download -q "prometheus=$(MONITORING_PROM_VERSION)"; fi
	dpkg-deb -x $(MONITORING_CACHE)/deb/prometheus_*.deb $(MONITORING_CACHE)/prometheus-$(MONITORING_PROM_VERSION)
	@$(PROMTOOL) --version | head -1

monitoring-unit: setup monitoring-tools ## promtool check/test rules (fire and silent cases, mutants), rendered config
	$(TIMED) monitoring-unit env PROMTOOL=$(PROMTOOL) pytest -q tests/monitoring

monitoring-molecule: setup host ## Stack with the stand-in + monitoring: targets up, DB-down alert, backup age, dashboards
	$(TIMED) monitoring-molecule env PROMTOOL=$(PROMTOOL) molecule test -s monitoring

monitoring-test: monitoring-unit monitoring-molecule ## Everything CI runs for monitoring

dashboards-check: setup ## Every dashboard PromQL returns data on $(MONITORING_PROMETHEUS)
	$(PY) tests/monitoring/dashboard_queries.py --prometheus $(MONITORING_PROMETHEUS)

dashboards-png: setup ## PNG of each dashboard from $(MONITORING_PROMETHEUS) into build/dashboards (not committed)
	$(PY) scripts/dashboards_png.py --prometheus $(MONITORING_PROMETHEUS) --out $(ROOT)/build/dashboards

TEST_TARGETS += monitoring-test
