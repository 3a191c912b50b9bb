# Kubernetes area: the moodle chart, the helm_deploy role and the kopf operator, tested against a
# real kube-apiserver + etcd built from their Go modules (scripts/k8s/, cached by version under
# /var/cache/moodle-platform/k8s). See docs/kubernetes.md.
K8S_PYTEST := pytest -q -p no:cacheprovider -p no:logging --timeout=900 --durations=5

.PHONY: k8s-tools k8s-unit k8s-test k8s-test-real k8s-operator-image k8s-image-test k8s-chart-rules k8s-monitoring-crds
# The chart's PrometheusRule embeds the monitoring role's alert rules. Helm reads only files inside the
# chart, so the chart carries a byte-identical copy; tests/k8s/test_chart_rules.py fails when they differ.
K8S_RULES_SRC   := $(COLLECTION)/roles/monitoring/files/rules/moodle.yml
K8S_RULES_CHART := $(COLLECTION)/charts/moodle/files/rules/moodle.yml

k8s-chart-rules: ## Copy the monitoring role's alert rules into the moodle chart's files/rules/ (run after editing them)
	@mkdir -p $(dir $(K8S_RULES_CHART))
	@if cmp -s $(K8S_RULES_SRC) $(K8S_RULES_CHART); then echo "k8s-chart-rules: $(K8S_RULES_CHART) is up to date"; \
	else cp $(K8S_RULES_SRC) $(K8S_RULES_CHART) && echo "k8s-chart-rules: copied $(K8S_RULES_SRC) -> $(K8S_RULES_CHART)"; fi

# Upstream monitoring.coreos.com CRDs (ServiceMonitor, PrometheusRule, Probe), taken unchanged from the
# prometheus-operator Go module (example/prometheus-operator-crd/), so the API server validates the
# chart's monitoring objects against the real schemas. Cached by version.
K8S_PROMOP_VERSION  := v0.85.0
K8S_MONITORING_CRDS := /var/cache/moodle-platform/k8s/prometheus-operator-crds-$(K8S_PROMOP_VERSION)
k8s-monitoring-crds: ## monitoring.coreos.com CRDs from the prometheus-operator Go module (cached)
	@if [ -s $(K8S_MONITORING_CRDS)/monitoring.coreos.com_probes.yaml ]; then echo "k8s-monitoring-crds: cached in $(K8S_MONITORING_CRDS)"; else \
	  export PATH="$$PATH:/usr/local/go/bin" GOFLAGS=-buildvcs=false GOTOOLCHAIN=local; \
	  dir=$$(cd / && go mod download -json github.com/prometheus-operator/prometheus-operator@$(K8S_PROMOP_VERSION) \
	         | $(PY) -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'); \
	  mkdir -p $(K8S_MONITORING_CRDS).tmp; \
	  for kind in servicemonitors prometheusrules probes; do \
	    cp "$$dir/example/prometheus-operator-crd/monitoring.coreos.com_$$kind.yaml" $(K8S_MONITORING_CRDS).tmp/; done; \
	  rm -rf $(K8S_MONITORING_CRDS); mv $(K8S_MONITORING_CRDS).tmp $(K8S_MONITORING_CRDS); \
	  echo "k8s-monitoring-crds: prometheus-operator $(K8S_PROMOP_VERSION) CRDs in $(K8S_MONITORING_CRDS)"; fi

k8s-tools: ## etcd, kube-apiserver and helm from their Go modules (first build ~10-40 min, then cached)
	$(TIMED) k8s-tools bash scripts/k8s/build-tools.sh all

k8s-unit: setup ## Operator pure-function unit tests (no API server)
	$(TIMED) k8s-unit $(K8S_PYTEST) operator/tests

k8s-test: setup k8s-tools k8s-monitoring-crds monitoring-tools k8s-unit k8s-image-test ## Chart matrix + strict schemas, CRD validation, deploy role idempotence, operator in-process and as an image vs a real API server
	$(TIMED) k8s-test env PROMTOOL=$(PROMTOOL) MOODLE_K8S_MONITORING_CRDS=$(K8S_MONITORING_CRDS) $(K8S_PYTEST) tests/k8s --ignore=tests/k8s/image

k8s-test-real: setup k8s-tools k8s-monitoring-crds monitoring-tools ## The same suite against the cluster in $$KUBECONFIG (status stand-ins skipped)
	@test -n "$${KUBECONFIG:-}" || { echo "k8s-test-real: set KUBECONFIG to a real cluster" >&2; exit 2; }
	$(TIMED) k8s-test-real env MOODLE_K8S_REAL=1 PROMTOOL=$(PROMTOOL) MOODLE_K8S_MONITORING_CRDS=$(K8S_MONITORING_CRDS) $(K8S_PYTEST) tests/k8s --ignore=tests/k8s/image

k8s-operator-image: setup host k8s-tools ## moodle-platform/moodle-operator image FROM moodle-platform/debian:bookworm
	$(TIMED) k8s-operator-image bash scripts/k8s/build-operator-image.sh

k8s-image-test: setup k8s-tools k8s-operator-image ## The operator image as a container (host network) against the test API server
	$(TIMED) k8s-image-test $(K8S_PYTEST) tests/k8s/image

TEST_TARGETS += k8s-test

# --- A real single-node cluster (issue 15): etcd + kube-apiserver + controller-manager + scheduler +
# kubelet (+ kube-proxy) from the same k8s.io/kubernetes module, a containerd instance of its own (not
# Docker's) with runc, Debian's CNI plugins, and a pause image built here. See docs/kubernetes.md.
K8S_CLUSTER_PKGS  := containerd runc containernetworking-plugins conntrack iptables
K8S_CLUSTER_STATE ?= /var/lib/moodle-k8s/cluster

.PHONY: k8s-cluster-deps k8s-node-tools k8s-cluster-images k8s-cluster k8s-cluster-up k8s-cluster-down k8s-e2e
k8s-cluster-deps: ## Host packages for the single-node cluster (containerd, runc, CNI plugins, conntrack; idempotent)
	@missing=""; for p in $(K8S_CLUSTER_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "k8s-cluster-deps: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	else echo "k8s-cluster-deps: all installed"; fi

k8s-node-tools: k8s-tools ## kube-controller-manager, kube-scheduler, kubelet, kube-proxy from the k8s.io/kubernetes module (cached)
	$(TIMED) k8s-node-tools bash scripts/k8s/build-tools.sh node

k8s-cluster-images: k8s-node-tools ## The cluster's pause image (pause.c from the kubernetes module) and CoreDNS image, FROM scratch
	$(TIMED) k8s-cluster-images bash scripts/k8s/cluster-image.sh all

k8s-cluster: k8s-cluster-deps k8s-node-tools k8s-cluster-images ## Start the single-node cluster, wait for a Ready node, stop it (smoke)
	$(TIMED) k8s-cluster-start bash scripts/k8s/start-cluster.sh $(K8S_CLUSTER_STATE)
	$(TIMED) k8s-cluster-stop bash scripts/k8s/stop-cluster.sh $(K8S_CLUSTER_STATE)

k8s-cluster-up: k8s-cluster-deps k8s-node-tools k8s-cluster-images ## Start the single-node cluster and leave it running (KUBECONFIG=$(K8S_CLUSTER_STATE)/admin.kubeconfig)
	$(TIMED) k8s-cluster-start bash scripts/k8s/start-cluster.sh $(K8S_CLUSTER_STATE)

k8s-cluster-down: ## Stop the cluster started by k8s-cluster-up and clean up after it
	$(TIMED) k8s-cluster-stop bash scripts/k8s/stop-cluster.sh $(K8S_CLUSTER_STATE)

k8s-e2e: setup host standin k8s-cluster-deps k8s-node-tools k8s-cluster-images k8s-tools k8s-operator-image ## Real pods on the single-node cluster: a pod, a Service, the chart and the operator with the stand-in images (one cluster for all)
	$(TIMED) k8s-e2e $(K8S_PYTEST) tests/k8s_e2e

TEST_TARGETS += k8s-e2e
