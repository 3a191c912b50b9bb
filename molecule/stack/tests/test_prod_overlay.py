"""The prod overlay with the stand-in: TLS proxy in front, secure cookies, only the proxy published; then
the same stack switched to ACME certificates, issued by Pebble (Let's Encrypt's ACME TEST server, built
from its Go module by `make acme-tools`; not a real CA) over a real TLS-ALPN challenge."""

import datetime as dt
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request

import docker
import pytest
from cryptography import x509

# Runs where Molecule runs the scenario (a copy outside the checkout); the playbook and roles come
# from the installed collection in ANSIBLE_COLLECTIONS_PATH (see ../molecule.yml).
SCENARIO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
PROJECT = "moodleciprod"
URL = "https://127.0.0.1:8643"
INVENTORY = {"docker_hosts": {"hosts": {"localhost": {
    "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}
VARS = {
    "moodle_platform_image_source": "build",
    "moodle_image_source_type": "local",
    "moodle_image_source_path": os.environ["MOODLE_STANDIN_DIR"],  # the Moodle stand-in (test data)
    "compose_stack_cron_mode": "service",
    "compose_stack_project_name": PROJECT,
    "compose_stack_environment": "prod",
    "compose_stack_wwwroot": URL,
    "compose_stack_https_port": 8643,
    "compose_stack_cron_keep_alive": 20,
    "compose_stack_mariadb_settings": {"innodb_buffer_pool_size": "128M"},
    "moodle_site_cron_wait_timeout": 120,
}


def run_playbook(playbook, extra, inventory):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false")
    cmd = [ANSIBLE_PLAYBOOK, playbook, "-i", str(inventory), "-e", json.dumps(extra)]
    return subprocess.run(cmd, cwd=SCENARIO, env=env, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def prod_stack(tmp_path_factory):
    inventory = tmp_path_factory.mktemp("prod") / "hosts.json"
    inventory.write_text(json.dumps(INVENTORY))
    result = run_playbook("moodle.platform.compose", VARS, inventory)
    try:
        assert result.returncode == 0, result.stdout[-4000:]
        yield inventory
    finally:
        down = {**VARS, "compose_stack_state": "absent", "compose_stack_remove_volumes": True}
        run_playbook(os.path.join(SCENARIO, "cleanup_project.yml"), down, inventory)


def test_moodle_is_served_through_the_tls_proxy_with_secure_cookies(prod_stack):
    context = ssl.create_default_context(cafile=f"/opt/moodle-platform/{PROJECT}/tls/cert.pem")
    context.check_hostname = False  # the self-signed certificate is for the IP in wwwroot
    with urllib.request.urlopen(URL + "/login/index.php", context=context, timeout=30) as response:  # noqa: S310
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
    assert "MoodleSession=" in cookie and "secure" in cookie.lower() and "httponly" in cookie.lower()


def test_only_the_proxy_is_published_and_no_dev_tools_run(prod_stack):
    client = docker.from_env()
    services = {}
    for c in client.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"}):
        ports = {k: v for k, v in c.attrs["NetworkSettings"]["Ports"].items() if v}
        services[c.labels["com.docker.compose.service"]] = ports
    assert set(services) == {"proxy", "web", "cron", "db", "redis"}
    assert [s for s, ports in services.items() if ports] == ["proxy"]
    assert services["proxy"]["443/tcp"][0]["HostPort"] == "8643"
    env = client.containers.get(f"{PROJECT}-web-1").attrs["Config"]["Env"]
    assert "MOODLE_SSLPROXY=1" in env and "MOODLE_COOKIESECURE=1" in env and "MOODLE_DEBUG=0" in env


PEBBLE_VERSION = "2.10.3"
PEBBLE_IMAGE = f"moodle-platform-test/pebble:{PEBBLE_VERSION}"
PEBBLE_DIR = os.environ.get("PEBBLE_DIR", f"/var/cache/moodle-platform/acme/pebble-{PEBBLE_VERSION}")
ACME_HOST = "moodle.test"


def served_certificate(context, timeout=5):
    """The leaf certificate the proxy serves for ACME_HOST (SNI) on the published port."""
    with socket.create_connection(("127.0.0.1", 8643), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=ACME_HOST) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def test_prod_services_match_the_privilege_table(prod_stack):
    """Least privilege (issue 14) of the prod overlay's services, Caddy included (see test_privileges.py)."""
    from ansible_collections.moodle.platform.plugins.module_utils import _privileges

    seen, problems = _privileges.project_drift(PROJECT, "mariadb")
    assert set(seen) == {"web", "cron", "db", "redis", "proxy"}
    assert problems == {}, "\n".join(f"{name}: {p}" for name, found in problems.items() for p in found)


def test_acme_certificate_is_issued_by_pebble_for_the_configured_name(prod_stack):
    assert os.path.isfile(f"{PEBBLE_DIR}/certs/pebble.minica.pem"), "run `make acme-tools` (builds Pebble)"
    client = docker.from_env()
    acme_vars = {**VARS, "compose_stack_wwwroot": f"https://{ACME_HOST}:8643", "compose_stack_tls_mode": "acme",
                 "compose_stack_acme_ca": "https://pebble:14000/dir", "compose_stack_acme_email": "ops@moodle.test",
                 "compose_stack_acme_ca_root": f"{PEBBLE_DIR}/certs/pebble.minica.pem",
                 "compose_stack_acme_renew_interval": "5m"}
    result = run_playbook("moodle.platform.compose", acme_vars, prod_stack)
    assert result.returncode == 0, result.stdout[-4000:]

    # Test plumbing: Pebble joins the stack's frontend network as `pebble` (the directory URL above) and
    # resolves the site's name to the proxy, as public DNS would for a real CA.
    network = client.networks.get(f"{PROJECT}_frontend")
    proxy = client.containers.get(f"{PROJECT}-proxy-1")
    proxy_ip = proxy.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    pebble = client.containers.create(
        PEBBLE_IMAGE, name=f"{PROJECT}-pebble-test", detach=True, extra_hosts={ACME_HOST: proxy_ip},
        environment={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
        ports={"15000/tcp": ("127.0.0.1", None)}, labels={"org.moodle-platform.test": "pebble"})
    try:
        network.connect(pebble, aliases=["pebble"])
        pebble.start()
        # The proxy gave up its first attempt (no CA reachable yet) and waits a minute: restart it.
        proxy.restart(timeout=10)
        proxy.reload()
        assert proxy.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"] == proxy_ip
        pebble.reload()
        mgmt = int(pebble.attrs["NetworkSettings"]["Ports"]["15000/tcp"][0]["HostPort"])
        minica = ssl.create_default_context(cafile=f"{PEBBLE_DIR}/certs/pebble.minica.pem")
        minica.check_hostname = False  # Pebble's listener certificate names localhost/pebble/127.0.0.1

        def fetch(path):
            with urllib.request.urlopen(f"https://127.0.0.1:{mgmt}{path}", context=minica, timeout=10) as r:
                return r.read()

        started = time.monotonic()
        untrusted = ssl.create_default_context()
        untrusted.check_hostname, untrusted.verify_mode = False, ssl.CERT_NONE
        leaf = None
        while time.monotonic() - started < 120:
            try:
                leaf = served_certificate(untrusted)
                if "Pebble" in leaf.issuer.rfc4514_string():
                    break
            except (OSError, ssl.SSLError):
                pass
            time.sleep(2)
        assert leaf is not None and "Pebble" in leaf.issuer.rfc4514_string(), (
            f"no certificate from Pebble after 120 s; proxy log:\n{proxy.logs(tail=40).decode()}")
        issued_after = time.monotonic() - started

        # Full verification against Pebble's root (fetched from its management API): chain + name.
        root_pem = fetch("/roots/0").decode()
        trusted = ssl.create_default_context(cadata=root_pem)
        assert served_certificate(trusted).serial_number == leaf.serial_number
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == [ACME_HOST]
        with socket.create_connection(("127.0.0.1", 8643), timeout=30) as sock:
            with trusted.wrap_socket(sock, server_hostname=ACME_HOST) as tls:
                tls.sendall(f"GET /login/index.php HTTP/1.1\r\nHost: {ACME_HOST}:8643\r\n"
                            "Connection: close\r\n\r\n".encode())
                status_line = tls.recv(4096).split(b"\r\n", 1)[0]
        assert status_line.split()[1] == b"200", status_line

        # Renewal: the proxy checks every 5 min (the variable) and renews at 1/3 of the lifetime left.
        adapted = json.loads(proxy.exec_run(
            ["caddy", "adapt", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]).output)
        renew = adapted["apps"]["tls"]["automation"]["renew_interval"]
        assert renew in ("5m", 300_000_000_000), renew  # Caddy's JSON: a duration string or nanoseconds
        renew = f"{renew // 60_000_000_000} min" if isinstance(renew, int) else renew
        issuer = adapted["apps"]["tls"]["automation"]["policies"][0]["issuers"][0]
        assert issuer["ca"] == "https://pebble:14000/dir" and issuer["email"] == "ops@moodle.test"
        lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
        print(f"ACME: certificate for {ACME_HOST} from Pebble {issued_after:.1f} s after the proxy restart; "
              f"valid {lifetime.days} d until {leaf.not_valid_after_utc:%Y-%m-%d}, renewal due from "
              f"{leaf.not_valid_after_utc - lifetime / 3:%Y-%m-%d}, checked every {renew}")
        assert leaf.not_valid_after_utc > dt.datetime.now(dt.UTC) + lifetime / 2

        # The certificate lives in the proxy_data volume: without the CA, a restarted proxy serves it again.
        pebble.stop(timeout=5)
        proxy.restart(timeout=10)
        deadline = time.monotonic() + 30
        while True:
            try:
                assert served_certificate(trusted).serial_number == leaf.serial_number
                break
            except (OSError, ssl.SSLError):
                assert time.monotonic() < deadline, "the restarted proxy does not serve the stored certificate"
                time.sleep(1)
    finally:
        pebble.remove(force=True)
