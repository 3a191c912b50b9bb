"""`helm install` of charts/moodle on the real single-node cluster, with the images our roles build
(moodle_image FROM the Moodle STAND-IN test fixture tests/fixtures/moodle-standin - not Moodle -, and
service_images' MariaDB and Redis), imported from Docker into the cluster's containerd.

What is real here: scheduling, the kubelet starting every container through containerd/runc as the
chart's security contexts say (uid 33, read-only root FS, no capabilities), the chart's probes run by
the kubelet, Secrets mounted as files, PVCs bound to PersistentVolumes, Services through kube-proxy.
What the test does by hand: the PersistentVolumes (hostPath, one pre-bound to each claim the rendered
manifest makes, created before the claims; there is no dynamic provisioner on this node). The site
installs itself: the release starts with 2 web replicas on a ReadWriteMany moodledata claim, and each
web pod's init container runs the image's installer, which serialises on its lock in moodledata - one
pod installs, the other waits and finds the site installed.

The in-chart MariaDB StatefulSet is proved on its own (test_in_chart_mariadb_starts: uid 999, read-only
root filesystem, the image's entry point initialising the datadir as that uid). The web/cron scenario
uses mariadb.enabled=false with a TEST-SIDE DATABASE (the same service_images MariaDB image, run as
its Compose deployment runs it: entry point as root, then mysqld as mysql), as externalDatabase, so
both ways the image starts are exercised."""

from __future__ import annotations

import fcntl
import http.client
import re
import secrets
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import kubernetes
import pytest
import yaml
from k8s.harness import CHARTS, helm_bin, kube_version, wait_for
from kubernetes.stream import stream

from .conftest import note

ROOT = Path(__file__).resolve().parents[2]
NS = "e2e-moodle"
RELEASE = "campus"
WWWROOT = "http://moodle.e2e.test"

def _split(ref: str) -> tuple[str, str]:
    repo, tag = ref.rsplit(":", 1)
    return repo, tag


def _helm(cluster, *args: str) -> str:
    proc = subprocess.run([helm_bin(), "--kubeconfig", cluster.kubeconfig, *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"helm {args[0]} failed: {proc.stderr}"
    return proc.stdout


TEST_DB = "e2e-test-db"  # the test-side database (see the module docstring)
# Two web pods starting together on one shared moodledata, on an empty database: the first-start lock.
FIRST_START = ["--set", "replicaCount=2", "--set", "persistence.accessMode=ReadWriteMany",
               "--set", "install.fullname=E2E campus", "--set", "install.shortname=e2e",
               "--set", "install.adminEmail=admin@e2e.test"]


def _values(images: dict) -> list[str]:
    moodle, mariadb, redis = (_split(images[k]) for k in ("moodle", "mariadb", "redis"))
    return ["--set", f"auth.existingSecret={RELEASE}-credentials", "--set", f"wwwroot={WWWROOT}",
            "--set", "mariadb.enabled=false", "--set", f"externalDatabase.host={TEST_DB}",
            "--set", f"image.repository={moodle[0]}", "--set-string", f"image.tag={moodle[1]}",
            "--set", f"mariadb.image.repository={mariadb[0]}", "--set-string", f"mariadb.image.tag={mariadb[1]}",
            "--set", f"redis.image.repository={redis[0]}", "--set-string", f"redis.image.tag={redis[1]}",
            # The probe runs every 5 s instead of 30 s: the test waits for it, not the behaviour.
            "--set", "web.readinessProbe.periodSeconds=5"]


VOLUME_LABEL = {"moodle-platform/test": "k8s-e2e"}


def manifest_claims(docs: list[dict]) -> list[dict]:
    """The claims a rendered manifest makes: its PersistentVolumeClaims, and one per StatefulSet replica
    and volumeClaimTemplate (named <template>-<statefulset>-<ordinal>, as the StatefulSet controller names
    them). Each: name, storage, accessModes, storageClassName."""
    def claim(name: str, spec: dict) -> dict:
        return {"name": name, "storage": spec["resources"]["requests"]["storage"],
                "accessModes": spec["accessModes"], "storageClassName": spec.get("storageClassName") or ""}
    out = [claim(d["metadata"]["name"], d["spec"]) for d in docs if d["kind"] == "PersistentVolumeClaim"]
    for sts in (d for d in docs if d["kind"] == "StatefulSet"):
        out += [claim(f"{t['metadata']['name']}-{sts['metadata']['name']}-{i}", t["spec"])
                for i in range(sts["spec"].get("replicas", 1)) for t in sts["spec"].get("volumeClaimTemplates", [])]
    return out


def _volume(claim: dict, ns: str, path: Path, uid: str | None = None) -> dict:
    ref = {"namespace": ns, "name": claim["name"], **({"uid": uid} if uid else {})}
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"{ns}-{claim['name']}", "labels": VOLUME_LABEL},
            "spec": {"capacity": {"storage": claim["storage"]}, "accessModes": claim["accessModes"],
                     "storageClassName": claim["storageClassName"], "persistentVolumeReclaimPolicy": "Retain",
                     "claimRef": ref, "hostPath": {"path": str(path), "type": "Directory"}}}


def provide_volumes(cluster, claims: list[dict], ns: str = NS) -> None:
    """A hostPath PersistentVolume pre-bound (claimRef by namespace and name) to each of CLAIMS, created
    BEFORE the claims exist (no dynamic provisioner on this node): the PV controller binds a claim as it
    sees it created, before any pod of it is scheduled. The directories are world-writable (each pod's own
    uid writes there). A PV of the same name left bound to another claim (same name, other uid: a claim
    deleted since, or an earlier run's with K8S_E2E_REUSE=1) would never bind again: it is deleted first."""
    state = Path(cluster.state_dir)
    for claim in claims:
        path = state / "volumes" / ns / claim["name"]
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)
        pv = _get_pv(cluster, f"{ns}-{claim['name']}")
        ref_uid = pv and (pv.spec.claim_ref.uid if pv.spec.claim_ref else None)
        if ref_uid and ref_uid != _claim_uid(cluster, claim["name"], ns):
            cluster.core.delete_persistent_volume(pv.metadata.name)
            wait_for(lambda n=pv.metadata.name: _get_pv(cluster, n) is None, timeout=60, interval=1,
                     what=f"stale PV {pv.metadata.name} (claimRef uid {ref_uid}) deleted")
        cluster.apply(_volume(claim, ns, path))


def wait_bound(cluster, claims: list[dict], ns: str = NS, timeout: float = 120) -> None:
    """Every one of CLAIMS exists and is Bound to its own PV. A claim still Pending 10 s after it appeared
    gets its PV's claimRef completed with its uid (the PV controller then queues that claim at once instead
    of at its next periodic sync). On timeout: each claim's and PV's state, the claims' events and the
    kube-controller-manager's log lines about them."""
    first_seen: dict[str, float] = {}

    def step():
        pending = []
        for claim in claims:
            pvc = _get_pvc(cluster, claim["name"], ns)
            want = f"{ns}-{claim['name']}"
            if pvc is not None and pvc.status.phase == "Bound" and pvc.spec.volume_name == want:
                continue
            pending.append(claim["name"])
            if pvc is None:
                continue
            first_seen.setdefault(claim["name"], time.monotonic())
            pv = _get_pv(cluster, want)
            if (time.monotonic() - first_seen[claim["name"]] > 10 and pv is not None
                    and pv.spec.claim_ref is not None and not pv.spec.claim_ref.uid):
                cluster.apply(_volume(claim, ns, Path(pv.spec.host_path.path), uid=pvc.metadata.uid))
        return not pending
    try:
        wait_for(step, timeout=timeout, interval=1, what=f"claims {[c['name'] for c in claims]} Bound")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{claims_report(cluster, claims, ns)}") from None


def claims_report(cluster, claims: list[dict], ns: str = NS) -> str:
    """Diagnostics: each claim's phase, uid and volume, its PV's phase and claimRef, the claim's events,
    and the kube-controller-manager's last log lines naming it."""
    log_path = Path(cluster.state_dir) / "controller-manager.log"
    log = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    out = []
    for claim in claims:
        pvc = _get_pvc(cluster, claim["name"], ns)
        pv = _get_pv(cluster, f"{ns}-{claim['name']}")
        out.append(f"claim {claim['name']}: " + (f"{pvc.status.phase} uid={pvc.metadata.uid} "
                                                f"volume={pvc.spec.volume_name}" if pvc else "absent")
                   + "; PV: " + (f"{pv.status.phase} claimRef={pv.spec.claim_ref and pv.spec.claim_ref.to_dict()}"
                                 if pv else "absent"))
        events = cluster.core.list_namespaced_event(ns, field_selector=f"involvedObject.name={claim['name']}")
        out += [f"  event {e.reason}: {e.message}" for e in events.items[-5:]]
        out += [f"  kcm: {line}" for line in [ln for ln in log if claim["name"] in ln][-5:]]
    return "\n".join(out)


def _get_pvc(cluster, name: str, ns: str):
    try:
        return cluster.core.read_namespaced_persistent_volume_claim(name, ns)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _get_pv(cluster, name: str):
    try:
        return cluster.core.read_persistent_volume(name)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _claim_uid(cluster, name: str, ns: str) -> str | None:
    pvc = _get_pvc(cluster, name, ns)
    return pvc.metadata.uid if pvc else None


def _pods(cluster, component: str, ns: str = NS, release: str = RELEASE):
    sel = f"app.kubernetes.io/instance={release},app.kubernetes.io/component={component}"
    return cluster.core.list_namespaced_pod(ns, label_selector=sel).items


def _ready_pod(cluster, component: str, ns: str = NS, release: str = RELEASE):
    for pod in _pods(cluster, component, ns, release):
        if pod.status.phase == "Running" and any(c.type == "Ready" and c.status == "True"
                                                 for c in pod.status.conditions or []):
            return pod
    return None


def _describe(cluster, component: str, ns: str = NS, release: str = RELEASE) -> str:
    """Why a component is not Ready: its pods' container states and events, and the last log lines."""
    out = []
    for pod in _pods(cluster, component, ns, release):
        out.append(f"pod {pod.metadata.name}: {pod.status.phase} "
                   f"{[(c.name, c.ready, c.state.to_dict()) for c in pod.status.container_statuses or []]}")
        events = cluster.core.list_namespaced_event(ns, field_selector=f"involvedObject.name={pod.metadata.name}")
        out += [f"  event {e.reason}: {e.message}" for e in events.items[-8:]]
        try:
            out.append("  log: " + cluster.pod_log(pod.metadata.name, ns)[-1500:])
        except Exception as exc:  # diagnostics only: any failure to read the log is reported
            out.append(f"  log unavailable: {exc}")
    return "\n".join(out) or f"no {component} pod"


def _wait_ready(cluster, component: str, timeout: float = 240, ns: str = NS, release: str = RELEASE):
    try:
        return wait_for(lambda: _ready_pod(cluster, component, ns, release), timeout=timeout, interval=2,
                        what=f"{component} pod Ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_describe(cluster, component, ns, release)}") from None


def _exec(cluster, pod: str, container: str, command: list[str], ns: str = NS) -> str:
    return stream(cluster.core.connect_get_namespaced_pod_exec, pod, ns, container=container, command=command,
                  stderr=True, stdin=False, stdout=True, tty=False)


@pytest.fixture(scope="module")
def release(cluster, images):
    admin_password = secrets.token_urlsafe(18)
    cluster.namespace(NS)
    cluster.secret(f"{RELEASE}-credentials", NS, {
        "db_password": secrets.token_urlsafe(18), "db_root_password": secrets.token_urlsafe(18),
        "redis_password": secrets.token_urlsafe(18), "moodle_admin_password": admin_password})
    chart = str(CHARTS / "moodle")
    manifest = _helm(cluster, "template", RELEASE, chart, "-n", NS, *_values(images), *FIRST_START,
                     "--kube-version", kube_version())
    claims = manifest_claims([d for d in yaml.safe_load_all(manifest) if d])
    started = time.monotonic()
    _test_side_database(cluster, images["mariadb"])
    _wait_ready(cluster, "test-db")
    note(f"test-side database Ready in {time.monotonic() - started:.1f}s")
    # The test holds the installer's lock in the (hostPath) moodledata volume before the pods exist, as a
    # long first install would: both web pods' installers must wait on it, whatever their start order.
    volume = Path(cluster.state_dir) / "volumes" / NS / f"{RELEASE}-moodledata"
    volume.mkdir(parents=True, exist_ok=True)
    volume.chmod(0o777)
    lockfile = volume / ".moodle-platform-install.lock"
    lockfile.touch()
    lockfile.chmod(0o666)
    lock = lockfile.open("r")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        provide_volumes(cluster, claims)
        _helm(cluster, "install", RELEASE, chart, "-n", NS, *_values(images), *FIRST_START)
        wait_bound(cluster, claims)
        _wait_ready(cluster, "redis")
        note(f"helm install -> Redis Ready in {time.monotonic() - started:.1f}s")
        yield {"admin_password": admin_password, "images": images, "started": started, "lock": lock}
    finally:
        lock.close()


def _test_side_database(cluster, mariadb_image: str) -> None:
    """The service_images MariaDB run as its image expects (root entry point), on an emptyDir, with the
    release's credentials Secret; labelled like a release component so the diagnostics find it."""
    labels = {"app.kubernetes.io/instance": RELEASE, "app.kubernetes.io/component": "test-db"}
    cluster.apply({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": TEST_DB, "namespace": NS, "labels": labels},
        "spec": {"automountServiceAccountToken": False, "enableServiceLinks": False, "containers": [{
            "name": "mariadb", "image": mariadb_image, "imagePullPolicy": "Never",
            "env": [{"name": "MARIADB_DATABASE", "value": "moodle"}, {"name": "MARIADB_USER", "value": "moodle"},
                    {"name": "MARIADB_PASSWORD_FILE", "value": "/run/secrets/db_password"},
                    {"name": "MARIADB_ROOT_PASSWORD_FILE", "value": "/run/secrets/db_root_password"}],
            "ports": [{"containerPort": 3306}],
            "readinessProbe": {"tcpSocket": {"port": 3306}, "periodSeconds": 2},
            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"},
                             {"name": "secrets", "mountPath": "/run/secrets", "readOnly": True}]}],
            "volumes": [{"name": "data", "emptyDir": {}},
                        {"name": "secrets", "secret": {"secretName": f"{RELEASE}-credentials"}}]}})
    cluster.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": TEST_DB, "namespace": NS},
                   "spec": {"selector": labels, "ports": [{"port": 3306, "targetPort": 3306}]}})


class Client:
    """HTTP through the Service's ClusterIP (kube-proxy), with the site's host name and a cookie."""

    def __init__(self, ip: str, port: int):
        self.ip, self.port, self.cookies = ip, port, {}

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict, str]:
        conn = http.client.HTTPConnection(self.ip, self.port, timeout=20)
        headers = {"Host": WWWROOT.split("//", 1)[1]}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        for key, value in resp.getheaders():
            if key.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        text = resp.read().decode(errors="replace")
        conn.close()
        return resp.status, dict(resp.getheaders()), text


def _web_pods_ready(cluster, count: int):
    """Exactly COUNT web pods, none terminating, all Ready (a terminating pod can still get a connection
    from the Service while it shuts down)."""
    pods = _pods(cluster, "web")
    ready = [p for p in pods if p.metadata.deletion_timestamp is None
             and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])]
    return ready if len(pods) == count and len(ready) == count else None


def _installer_waiting(cluster, pod) -> bool:
    state = next((c for c in pod.status.init_container_statuses or [] if c.name == "install"), None)
    if state is None or state.state.running is None:
        return False
    try:
        return "waiting for the install lock" in cluster.pod_log(pod.metadata.name, NS, container="install")
    except Exception:  # the log is not there yet: keep waiting
        return False


def test_helm_install_two_web_pods_install_once_and_serve_a_login(cluster, release):
    """helm install with 2 web replicas on an empty database and one ReadWriteMany moodledata: both pods'
    installers (init containers) start and wait on the install lock; once it is free, exactly one pod
    installs and the other finds the site installed; both become Ready through their probes, as uid 33 on
    a read-only root filesystem, and a login works through the Service with requests on both pods."""
    pods = wait_for(lambda: (ps := [p for p in _pods(cluster, "web") if p.metadata.deletion_timestamp is None])
                    and len(ps) == 2 and all(_installer_waiting(cluster, p) for p in ps) and ps,
                    timeout=240, interval=2, what="both web pods' installers waiting on the install lock")
    release["lock"].close()  # the "long first install" ends
    t = time.monotonic()
    try:
        pods = wait_for(lambda: _web_pods_ready(cluster, 2), timeout=240, interval=2, what="2 web pods Ready")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{_describe(cluster, 'web')}") from None
    cron = _wait_ready(cluster, "cron")
    note(f"install lock released -> 2 web pods Ready in {time.monotonic() - t:.1f}s; web and cron Ready "
         f"{time.monotonic() - release['started']:.1f}s after helm install")
    logs = [cluster.pod_log(p.metadata.name, NS, container="install") for p in pods]
    installed = [log for log in logs if "moodle-platform: installed" in log]
    already = [log for log in logs if "moodle-platform: already installed" in log]
    assert len(installed) == 1 and len(already) == 1, logs
    assert "System (stand-in)" in installed[0], installed[0]

    # The web containers really run as uid 33 on a read-only root filesystem.
    for pod in pods:
        ident = _exec(cluster, pod.metadata.name, "moodle", ["sh", "-c", "id -u; id -g; touch /probe-ro 2>&1; echo rc=$?"])
        lines = ident.split("\n")
        assert lines[0] == "33" and lines[1] == "33", ident
        assert "Read-only file system" in ident and "rc=1" in ident, ident
    assert cron.spec.security_context.run_as_user == 33 or cron.spec.containers[0].security_context.run_as_user == 33

    # Login through the Service (ClusterIP, kube-proxy): form token, POST, redirect, dashboard; the
    # session is in Redis, so the dashboard answers on whichever pod kube-proxy picks.
    svc = cluster.core.read_namespaced_service(RELEASE, NS)
    client = Client(svc.spec.cluster_ip, svc.spec.ports[0].port)
    status, _, page = wait_for(lambda: (r := client.request("GET", "/login/index.php"))[0] == 200 and r,
                               timeout=60, interval=1, what="login page through the Service")
    token = re.search(r'name="logintoken" value="([0-9a-f]+)"', page).group(1)
    status, headers, body = client.request("POST", "/login/index.php", {
        "logintoken": token, "username": "admin", "password": release["admin_password"]})
    assert status == 303 and headers.get("Location") == "/my/", (status, body)
    # Both pods in the Service's endpoints (Ready pods join them a moment later), then kube-proxy's turn.
    ips = {p.status.pod_ip for p in pods}
    discovery = kubernetes.client.DiscoveryV1Api(cluster.client)
    wait_for(lambda: ips <= {a for sl in discovery.list_namespaced_endpoint_slice(
        NS, label_selector=f"kubernetes.io/service-name={RELEASE}").items for e in sl.endpoints or []
        if e.conditions and e.conditions.ready for a in e.addresses}, timeout=60, interval=1,
        what="both web pods in the Service's endpoints")
    time.sleep(2)
    for _ in range(40):  # kube-proxy picks a backend at random per connection
        status, _, dashboard = client.request("GET", "/my/")
        assert status == 200 and "admin" in dashboard, (status, dashboard[:500])
    served = [cluster.pod_log(p.metadata.name, NS, container="moodle").count("GET /my/") for p in pods]
    assert all(served), f"requests per pod: {served}"
    # A wrong password is refused (the check can fail).
    fresh = Client(svc.spec.cluster_ip, svc.spec.ports[0].port)
    _, _, page = fresh.request("GET", "/login/index.php")
    token = re.search(r'name="logintoken" value="([0-9a-f]+)"', page).group(1)
    status, _, body = fresh.request("POST", "/login/index.php", {"logintoken": token, "username": "admin",
                                                                  "password": "wrong"})
    assert status == 200 and "Invalid login" in body, (status, body[:300])


def test_installer_refuses_an_empty_database_next_to_an_installed_moodledata(cluster, release):
    """What a restore looks like from a web pod starting meanwhile: the engine has recreated the database
    (empty) and is loading the dump, while moodledata belongs to an installed site. The installer must
    not install a fresh site into that database; it refuses, naming its marker, and changes nothing.
    (Runs after the login test: it empties the test-side database of this release.)"""
    web = _ready_pod(cluster, "web")
    root_sql = 'MYSQL_PWD="$(cat /run/secrets/db_root_password)" exec mariadb -uroot -N -B -e "$1"'
    _exec(cluster, TEST_DB, "mariadb", ["sh", "-c", root_sql, "sh", "DROP DATABASE moodle; CREATE DATABASE moodle"])
    out = _exec(cluster, web.metadata.name, "moodle", [
        "sh", "-c", "php /usr/local/lib/moodle-platform/install.php --adminuser=admin --fullname=X --shortname=x 2>&1;"
        " echo rc=$?"])
    assert "not installing over it" in out and "/var/www/moodledata/.moodle-platform-installed" in out, out
    assert out.rstrip().endswith("rc=1"), out
    tables = _exec(cluster, TEST_DB, "mariadb", ["sh", "-c", root_sql, "sh", "SHOW TABLES FROM moodle"])
    assert tables.strip() == "", tables


def test_in_chart_mariadb_starts(cluster, release):
    """The chart's own MariaDB StatefulSet (as `helm install` renders it with the default
    mariadb.enabled=true), started by the kubelet: it must become Ready."""
    out = _helm(cluster, "template", "indb", str(CHARTS / "moodle"), "-n", NS, *_values(release["images"]),
                "--set", "mariadb.enabled=true", "--show-only", "templates/mariadb.yaml", "--kube-version", kube_version())
    docs = [d for d in yaml.safe_load_all(out) if d]
    claims = manifest_claims(docs)
    provide_volumes(cluster, claims)
    for doc in docs:
        cluster.apply(doc, namespace=NS)
    wait_bound(cluster, claims)
    sel = "app.kubernetes.io/instance=indb,app.kubernetes.io/component=db"

    # Ready must hold for 30 s with no restart: mariadbd opens its TCP port (what the readiness probe
    # checks) before it fails on its unix socket, so a single Ready can be a moment before the crash.
    ready_since: list[float] = []

    def stays_ready_or_crashed():
        for pod in cluster.core.list_namespaced_pod(NS, label_selector=sel).items:
            for st in pod.status.container_statuses or []:
                if st.restart_count:
                    log = cluster.core.read_namespaced_pod_log(pod.metadata.name, NS, previous=True)
                    raise AssertionError(f"in-chart MariaDB crashed (exit {st.last_state.terminated.exit_code}):\n"
                                         + "\n".join(log.splitlines()[-4:]))
                if not st.ready:
                    ready_since.clear()
                    return None
                ready_since[:] = ready_since or [time.monotonic()]
                return "ready" if time.monotonic() - ready_since[0] >= 30 else None
        return None
    assert wait_for(stays_ready_or_crashed, timeout=240, interval=2, what="in-chart MariaDB Ready for 30 s") == "ready"
    pod = cluster.core.list_namespaced_pod(NS, label_selector=sel).items[0].metadata.name
    # As the chart's non-root uid on a read-only root filesystem; the application user from the Secret
    # reaches its database over TCP, a wrong password is refused (the check can fail).
    out = _exec(cluster, pod, "mariadb", ["sh", "-c", "id -u; touch /probe-ro 2>&1; "
                                          "MYSQL_PWD=\"$(cat /run/secrets/db_password)\" mariadb -h 127.0.0.1 -u moodle "
                                          "-N -e 'SELECT DATABASE(), CURRENT_USER()' moodle; "
                                          "MYSQL_PWD=wrong mariadb -h 127.0.0.1 -u moodle -e 'SELECT 1' 2>&1; echo rc=$?"])
    lines = out.splitlines()
    assert lines[0] == "999" and "Read-only file system" in out, out
    assert "moodle\tmoodle@%" in out and "Access denied" in out and out.rstrip().endswith("rc=1"), out
