"""The moodle and moodle-operator charts: lint, a values matrix rendered and validated against the
target Kubernetes version's schemas (kubernetes-validate --strict), the clustering guard, and a
server-side dry-run apply into the real API server (admission and schema of the server itself)."""

from __future__ import annotations

import subprocess

import kubernetes_validate
import pytest
import yaml

from .harness import CHARTS, kube_version

CHART = CHARTS / "moodle"
OPERATOR_CHART = CHARTS / "moodle-operator"
MATRIX = {
    "default": ["-f", str(CHART / "ci" / "default-values.yaml")],
    "ha": ["-f", str(CHART / "ci" / "ha-values.yaml")],
    "external": ["-f", str(CHART / "ci" / "external-values.yaml")],
    "file-sessions-single": ["-f", str(CHART / "ci" / "default-values.yaml"), "--set", "sessions.handler=file",
                             "--set", "redis.enabled=false"],
    "no-persistence": ["-f", str(CHART / "ci" / "default-values.yaml"), "--set", "persistence.enabled=false"],
    "blue-green": ["-f", str(CHART / "ci" / "ha-values.yaml"), "--set", "blueGreen.candidateTag=4.5.7",
                   "--set", "blueGreen.active=candidate"],
    "pgsql": ["-f", str(CHART / "ci" / "default-values.yaml"), "--set", "database.type=pgsql"],
    "pgsql-external": ["-f", str(CHART / "ci" / "external-values.yaml"), "--set", "database.type=pgsql",
                       "--set", "postgresql.enabled=false", "--set", "externalDatabase.host=pg.db.svc.cluster.local"],
}
# Kinds from CRDs the schema bundle does not know; they are checked by shape below instead.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "Probe", "ClusterKopfPeering"}


def template(helm: str, chart, args: list[str], release: str = "site") -> subprocess.CompletedProcess:
    return subprocess.run([helm, "template", release, str(chart), "--namespace", "moodle",
                           "--kube-version", kube_version(), *args], capture_output=True, text=True, check=False)


def docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def validate(doc: dict) -> None:
    if doc["kind"] in CRD_KINDS:
        assert doc["apiVersion"].endswith("/v1") and doc["metadata"]["name"]
        assert doc["kind"] == "ClusterKopfPeering" or doc["spec"]
        return
    minor = ".".join(kube_version().split(".")[:2]) + ".0"
    kubernetes_validate.validate(doc, minor, strict=True)


@pytest.mark.parametrize("chart", [CHART, OPERATOR_CHART], ids=["moodle", "moodle-operator"])
def test_helm_lint(helm, chart):
    extra = ["-f", str(CHART / "ci" / "default-values.yaml")] if chart == CHART else []
    proc = subprocess.run([helm, "lint", "--strict", str(chart), "--kube-version", kube_version(), *extra],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_matrix_renders_and_every_manifest_validates_strictly(helm, case):
    proc = template(helm, CHART, MATRIX[case])
    assert proc.returncode == 0, proc.stderr
    rendered = docs(proc.stdout)
    kinds = {d["kind"] for d in rendered}
    assert {"Deployment", "Service"} <= kinds
    for doc in rendered:
        validate(doc)
        spec = (doc.get("spec") or {}).get("template", {}).get("spec") or {}
        for container in spec.get("containers", []):
            # Credentials only by file from a Secret, never as env values.
            for env in container.get("env", []):
                assert "PASSWORD" not in env["name"] or env["name"].endswith("_FILE"), env
            assert container.get("resources", {}).get("limits"), f"{doc['kind']} {container['name']} has no limits"
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            assert spec["securityContext"]["runAsNonRoot"] is True


def test_ha_case_has_pdb_ingress_tls_and_rolling_updates(helm):
    rendered = docs(template(helm, CHART, MATRIX["ha"]).stdout)
    by_kind = {}
    for d in rendered:
        by_kind.setdefault(d["kind"], []).append(d)
    assert by_kind["PodDisruptionBudget"][0]["spec"]["minAvailable"] == 1
    assert by_kind["Ingress"][0]["spec"]["tls"][0]["secretName"] == "moodle-tls"
    web = next(d for d in by_kind["Deployment"] if d["metadata"]["name"] == "site-web")
    assert web["spec"]["strategy"]["type"] == "RollingUpdate"
    assert by_kind["PersistentVolumeClaim"][0]["spec"]["accessModes"] == ["ReadWriteMany"]
    assert by_kind["Job"][0]["metadata"]["name"] == "site-upgrade-20261124"
    readiness = web["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    assert readiness[-1] == "--is-pending"


def test_cron_never_upgrades_and_network_policies_only_admit_moodle_pods(helm):
    rendered = docs(template(helm, CHART, MATRIX["default"]).stdout)
    cron = next(d for d in rendered if d["metadata"]["name"] == "site-cron")
    command = " ".join(cron["spec"]["template"]["spec"]["containers"][0]["args"])
    assert "cron.php --keep-alive=300" in command and "upgrade" not in command
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    assert {p["metadata"]["name"] for p in policies} == {"site-db", "site-redis"}
    for policy in policies:
        peer = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        assert peer == {"app.kubernetes.io/instance": "site", "platform.moodle.dev/db-client": "true"}
    db = next(d for d in rendered if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "site-db")
    assert "platform.moodle.dev/db-client" not in db["spec"]["template"]["metadata"]["labels"]
    # Data outlives its workload: claims are kept when a StatefulSet goes, and on uninstall.
    assert db["spec"]["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    claim = next(d for d in rendered if d["kind"] == "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_blue_green_candidate_has_its_own_selector_and_the_service_follows_active(helm):
    rendered = docs(template(helm, CHART, MATRIX["blue-green"]).stdout)
    deployments = {d["metadata"]["name"]: d for d in rendered if d["kind"] == "Deployment"}
    main, candidate = deployments["site-web"], deployments["site-web-candidate"]
    assert main["spec"]["selector"] != candidate["spec"]["selector"]  # never claim each other's pods
    assert candidate["spec"]["template"]["spec"]["containers"][0]["image"] == "moodle-platform/moodle:4.5.7"
    assert main["spec"]["template"]["spec"]["containers"][0]["image"] == "moodle-platform/moodle:4.5.6"
    service = next(d for d in rendered if d["kind"] == "Service" and d["metadata"]["name"] == "site")
    assert service["spec"]["selector"]["platform.moodle.dev/track"] == "candidate"
    assert candidate["spec"]["template"]["metadata"]["labels"]["platform.moodle.dev/track"] == "candidate"
    # Both tracks keep serving for a few seconds after they are told to stop (endpoints drain first).
    for web in (main, candidate):
        pod = web["spec"]["template"]["spec"]
        assert pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]
        assert pod.get("terminationGracePeriodSeconds", 30) > 5


def test_web_pods_install_the_site_on_first_start_under_the_images_lock(helm):
    """Every web pod (both tracks) starts with the image's installer as an init container: same image,
    env, mounts and security context as the web container; the admin password is not on its command
    line (install.php reads the Secret's file). install.enabled=false leaves it out."""
    rendered = docs(template(helm, CHART, [*MATRIX["blue-green"], "--set", "install.fullname=Campus: North #1",
                                           "--set", "install.adminEmail=ops@example.org"]).stdout)
    for web in (d for d in rendered if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("site-web")):
        pod = web["spec"]["template"]["spec"]
        (init,) = pod["initContainers"]
        main = pod["containers"][0]
        assert init["name"] == "install" and init["image"] == main["image"]
        assert init["command"][:2] == ["/bin/sh", "-c"] and "fsockopen" in init["command"][2]
        assert "exec php /usr/local/lib/moodle-platform/install.php" in init["command"][2]
        assert init["command"][3:] == ["install", "--lang=en", "--adminuser=admin", "--adminemail=ops@example.org",
                                       "--fullname=Campus: North #1", "--shortname=moodle"]
        assert not any("pass" in arg for arg in init["command"]), init["command"]
        assert init["env"] == main["env"] and init["volumeMounts"] == main["volumeMounts"]
        assert init["securityContext"] == main["securityContext"]
    off = docs(template(helm, CHART, [*MATRIX["default"], "--set", "install.enabled=false"]).stdout)
    assert not any(d["spec"]["template"]["spec"].get("initContainers") for d in off if d["kind"] == "Deployment")


def _env(container):
    return {e["name"]: e.get("value") for e in container["env"]}


def test_pgsql_runs_the_in_chart_postgresql_non_root_and_points_every_pod_at_it(helm):
    rendered = docs(template(helm, CHART, MATRIX["pgsql"]).stdout)
    (db,) = [d for d in rendered if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "site-db"]
    pod = db["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["image"] == "moodle-platform/postgresql:17" and server["name"] == "postgresql"
    # the image's postgres user (initdb needs its passwd entry); PGDATA below the volume's root
    assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["fsGroup"]) == (100, 102)
    assert server["securityContext"]["readOnlyRootFilesystem"] is True
    env = _env(server)
    assert env["PGDATA"] == "/var/lib/postgresql/data/pgdata"
    assert env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db_password"  # noqa: S105 - a path
    assert env["POSTGRES_USER"] == "moodle"
    assert {m["mountPath"] for m in server["volumeMounts"]} >= {"/var/lib/postgresql/data", "/run/postgresql", "/tmp"}  # noqa: S108
    assert "pg_isready" in server["readinessProbe"]["exec"]["command"]
    service = next(d for d in rendered if d["kind"] == "Service" and d["metadata"]["name"] == "site-db")
    assert [p["port"] for p in service["spec"]["ports"]] == [5432]
    assert not any(c["name"] == "mariadb" for d in rendered if d["kind"] == "StatefulSet"
                   for c in d["spec"]["template"]["spec"]["containers"])
    policy = next(d for d in rendered if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "site-db")
    assert policy["spec"]["ingress"][0]["ports"] == [{"port": 5432, "protocol": "TCP"}]
    for deployment in (d for d in rendered if d["kind"] == "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in [*pod.get("initContainers", []), *pod["containers"]]:
            env = _env(container)
            assert (env["MOODLE_DB_TYPE"], env["MOODLE_DB_HOST"], env["MOODLE_DB_PORT"]) == ("pgsql", "site-db", "5432")


def test_pgsql_external_database_defaults_to_port_5432_and_runs_no_database(helm):
    rendered = docs(template(helm, CHART, MATRIX["pgsql-external"]).stdout)
    assert not [d for d in rendered if d["kind"] == "StatefulSet"]
    web = next(d for d in rendered if d["metadata"]["name"] == "site-web")
    env = _env(web["spec"]["template"]["spec"]["containers"][0])
    assert (env["MOODLE_DB_TYPE"], env["MOODLE_DB_HOST"], env["MOODLE_DB_PORT"]) == (
        "pgsql", "pg.db.svc.cluster.local", "5432")
    moved = docs(template(helm, CHART, [*MATRIX["pgsql-external"], "--set", "externalDatabase.port=6432"]).stdout)
    web = next(d for d in moved if d["metadata"]["name"] == "site-web")
    assert _env(web["spec"]["template"]["spec"]["containers"][0])["MOODLE_DB_PORT"] == "6432"
    mariadb = docs(template(helm, CHART, MATRIX["external"]).stdout)
    web = next(d for d in mariadb if d["metadata"]["name"] == "site-web")
    assert _env(web["spec"]["template"]["spec"]["containers"][0])["MOODLE_DB_PORT"] == "3306"


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "database.type=mysqli"], 'database.type must be mariadb or pgsql (Moodle\'s dbtype), got "mysqli"'),
    (["--set", "externalDatabase.port=pg"], "externalDatabase.port must be a port number or empty"),
    (["--set", "database.type=pgsql", "--set", "postgresql.enabled=false"],
     "externalDatabase.host is required when postgresql.enabled=false"),
    (["--set", "blueGreen.active=candidate"], "blueGreen.active=candidate needs blueGreen.candidateTag"),
    (["--set", "replicaCount=2"], "needs persistence.accessMode=ReadWriteMany"),
    (["--set", "replicaCount=2", "--set", "persistence.accessMode=ReadWriteMany", "--set", "sessions.handler=file"],
     "needs sessions.handler=redis"),
    (["--set", "replicaCount=2", "--set", "persistence.enabled=false"], "needs persistence.enabled=true"),
    (["--set", "sessions.handler=memcached"], "sessions.handler must be redis or file"),
    (["--set", "redis.enabled=false"], "sessions.handler=redis needs redis.enabled=true or externalRedis.host"),
    (["--set", "auth.existingSecret="], "auth.existingSecret is required"),
    (["--set", "metrics.serviceMonitor.enabled=true"], "needs metrics.apacheExporter.enabled"),
    (["--set", "metrics.probe.enabled=true"], "needs metrics.probe.proberUrl"),
    (["--set", "web.preStopSleepSeconds=40"], "web.preStopSleepSeconds must be 0-25"),
    (["--set", "install.shortname="], "install.shortname must not be empty"),
])
def test_guard_refuses_to_render(helm, args, message):
    proc = template(helm, CHART, ["-f", str(CHART / "ci" / "default-values.yaml"), *args])
    assert proc.returncode != 0 and proc.stdout == ""
    assert message in proc.stderr, proc.stderr


def test_operator_chart_validates(helm):
    proc = template(helm, OPERATOR_CHART, [], release="moodle-operator")
    assert proc.returncode == 0, proc.stderr
    for doc in docs(proc.stdout):
        validate(doc)


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_server_side_dry_run_apply_is_accepted_by_the_api_server(helm, cluster, case):
    """The real API server (schemas, defaulting, admission) accepts every rendered object."""
    ns = cluster.namespace(f"chart-{case}")
    for doc in docs(template(helm, CHART, MATRIX[case]).stdout):
        if doc["kind"] in CRD_KINDS:
            continue
        res = cluster.res(doc["apiVersion"], doc["kind"])
        res.server_side_apply(body=doc, namespace=ns, field_manager="chart-test", dry_run="All")
