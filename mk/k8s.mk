# Kubernetes area: the moodle chart, the helm_deploy role and the kopf operator, tested against a
# real kube-apiserver + etcd built from their Go modules (scripts/k8s/, cached by version under
# /var/cache/moodle-platform/k8s). See docs/kubernetes.md.
K8S_PYTEST := pytest -q -p no:cacheprovider -p no:logging --timeout=900

.PHONY: k8s-tools k8s-unit k8s-test k8s-test-real k8s-operator-image k8s-image-test
k8s-tools: ## etcd, kube-apiserver and helm from their Go modules (first build ~10-40 min, then cached)
	$(TIMED) k8s-tools bash scripts/k8s/build-tools.sh all

k8s-unit: setup ## Operator pure-function unit tests (no API server)
	$(TIMED) k8s-unit $(K8S_PYTEST) operator/tests

k8s-test: setup k8s-tools k8s-unit k8s-image-test ## Chart matrix + strict schemas, CRD validation, deploy role idempotence, operator in-process and as an image vs a real API server
	$(TIMED) k8s-test $(K8S_PYTEST) tests/k8s --ignore=tests/k8s/image

k8s-test-real: setup k8s-tools ## The same suite against the cluster in $$KUBECONFIG (status stand-ins skipped)
	@test -n "$${KUBECONFIG:-}" || { echo "k8s-test-real: set KUBECONFIG to a real cluster" >&2; exit 2; }
	$(TIMED) k8s-test-real env MOODLE_K8S_REAL=1 $(K8S_PYTEST) tests/k8s --ignore=tests/k8s/image

k8s-operator-image: setup host k8s-tools ## moodle-platform/moodle-operator image FROM moodle-platform/debian:bookworm
	$(TIMED) k8s-operator-image bash scripts/k8s/build-operator-image.sh

k8s-image-test: setup k8s-tools k8s-operator-image ## The operator image as a container (host network) against the test API server
	$(TIMED) k8s-image-test $(K8S_PYTEST) tests/k8s/image

TEST_TARGETS += k8s-test
