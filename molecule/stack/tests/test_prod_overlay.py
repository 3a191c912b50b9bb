"""The prod overlay with the stand-in: TLS proxy in front, secure cookies, only the proxy published."""

import json
import os
import ssl
import subprocess
import sys
import urllib.request

import docker
import pytest

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
        yield result
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
