"""Bad input is refused by the preflight before anything is created; registry/prod files render and validate."""

import json
import os
import subprocess
import sys

import pytest

# Runs where Molecule runs the scenario (a copy outside the checkout); the roles come from the
# installed collection in ANSIBLE_COLLECTIONS_PATH (see ../molecule.yml).
SCENARIO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
PLAYBOOK = os.path.join(SCENARIO, "render_check.yml")
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
STANDIN = os.environ["MOODLE_STANDIN_DIR"]


# InnoDB sizing, checked in the two render tests below (no extra play): the db service's memory limit 6G.
RESOURCES = {"web": {"cpus": "2.0", "memory": "2G", "reservation_cpus": "0.5", "reservation_memory": "512M"},
             "cron": {"cpus": "1.0", "memory": "1G", "reservation_cpus": "0.1", "reservation_memory": "128M"},
             "db": {"cpus": "2.0", "memory": "6G", "reservation_cpus": "0.5", "reservation_memory": "512M"},
             "redis": {"cpus": "1.0", "memory": "768M", "reservation_cpus": "0.1", "reservation_memory": "64M"}}
MARIADB_SETTINGS = {"innodb_flush_log_at_trx_commit": 2, "collation-server": "utf8mb4_unicode_ci"}  # no InnoDB sizes


def mariadb_cnf(project):
    lines = (project / "config" / "mariadb.cnf").read_text().splitlines()
    return dict(line.split(" = ", 1) for line in lines if " = " in line and not line.startswith("#"))


def play(tmp_path, *extra, tags=None):
    cmd = [ANSIBLE_PLAYBOOK, PLAYBOOK, "-e", f"compose_stack_project_dir={tmp_path}/project",
           "-e", "compose_stack_project_name=preflightcheck", "-e", f"compose_stack_secrets_local_dir={tmp_path}/secrets"]
    for item in extra:
        cmd += ["-e", item]
    if tags:
        cmd += ["--tags", tags]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false")
    return subprocess.run(cmd, cwd=SCENARIO, env=env, capture_output=True, text=True, timeout=300)


BAD = [
    (["compose_stack_environment=prod", "compose_stack_wwwroot=http://moodle.example.org"], "must\nstart with https://"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://moodle.example.org",
      "compose_stack_db_password=changeme_secure_password_123"], "is a placeholder or too weak"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://moodle.example.org",
      "compose_stack_redis_password=short"], "is a placeholder or too weak"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://moodle.example.org", "compose_stack_mail_enabled=true",
      "compose_stack_mail_relay_host=smtp.example.com"], "Placeholder or unsafe mail settings in production"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://moodle.example.org", "compose_stack_mail_enabled=true",
      "compose_stack_mail_relay_host=smtp.mailrelay.eu", "compose_stack_mail_user=moodle-site",
      "compose_stack_mail_password=MySmtpPassword123"], "compose_stack_mail_password given is empty or a placeholder"),
    (["compose_stack_mail_enabled=true"], "compose_stack_mail_relay_host must be a host"),
    (["compose_stack_cron_mode=ofelia"], "cron mode 'ofelia' needs"),
    (["compose_stack_environment=staging"], "compose_stack_environment"),
    (["compose_stack_mariadb_buffer_pool_ratio=0.95"], "compose_stack_mariadb_buffer_pool_ratio must be between 0.1 and 0.8"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://10.0.0.5", "compose_stack_tls_mode=acme"],
     "a DNS name in compose_stack_wwwroot, not an IP address or localhost (it is '10.0.0.5')"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://moodle.example.org", "compose_stack_tls_mode=acme",
      "compose_stack_acme_email=admin@example.com"], "compose_stack_acme_email (it is 'admin@example.com')"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://moodle.example.org", "compose_stack_tls_mode=acme",
      "compose_stack_acme_ca_root=/nonexistent/roots.pem"], "compose_stack_acme_ca_root '/nonexistent/roots.pem' is not a file"),
    (["compose_stack_environment=prod", "compose_stack_wwwroot=https://moodle.example.org", "compose_stack_tls_mode=provided"],
     "a provided certificate needs both"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_input_fails_before_anything_is_created(tmp_path, extra, message):
    result = play(tmp_path, *extra)
    output = " ".join((result.stdout + result.stderr).split())
    assert result.returncode != 0, output[-2000:]
    assert " ".join(message.split()) in output, output[-3000:]
    assert not (tmp_path / "project").exists()
    # Secret values given on the command line never reach the output.
    for item in extra:
        if "password" in item:
            assert item.split("=", 1)[1] not in result.stdout + result.stderr


def test_port_in_use_by_something_else_fails(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = play(tmp_path, f"compose_stack_web_port={port}")
    assert result.returncode != 0
    # (Molecule's ansible.cfg sends failed results to stderr: display_failed_stderr.)
    assert f"Port 127.0.0.1:{port} is already in use" in " ".join((result.stdout + result.stderr).split())
    assert not (tmp_path / "project").exists()


def test_registry_mode_and_prod_overlay_render_and_validate(tmp_path):
    result = play(tmp_path, "render_images=true", "compose_stack_source_mode=registry", "compose_stack_environment=prod",
                  "compose_stack_wwwroot=https://moodle.example.org", "compose_stack_https_port=18443",
                  f"moodle_image_cache_dir={tmp_path}/images", "moodle_image_source_type=local",
                  f"moodle_image_source_path={STANDIN}",
                  json.dumps({"compose_stack_mariadb_settings": {**MARIADB_SETTINGS, "innodb_buffer_pool_size": "1G"}}),
                  tags="moodle_image_preflight,moodle_image_install,moodle_image_configure,compose_stack_preflight,"
                       "compose_stack_install,compose_stack_configure")
    assert result.returncode == 0, result.stdout[-3000:]
    dockerfile = (tmp_path / "images" / "runtime" / "Dockerfile").read_text()
    assert "FROM php:8.2-apache-bookworm" in dockerfile and "docker-php-ext-install" in dockerfile
    project = tmp_path / "project"
    check = subprocess.run(["docker", "compose", "-f", "compose.yml", "-f", "compose.prod.yml", "config"],
                           cwd=project, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    config = check.stdout
    assert "image: traefik:v2.11" in config
    assert 'published: "18443"' in config
    assert 'MOODLE_SSLPROXY: "1"' in config
    assert 'published: "3306"' not in config and "adminer" not in config
    assert (project / "tls" / "cert.pem").exists()
    # an explicit buffer pool wins over the derived one and sizes the redo log (a quarter)
    cnf = mariadb_cnf(project)
    assert (cnf["innodb_buffer_pool_size"], cnf["innodb_log_file_size"]) == ("1G", "256M"), cnf


def test_dev_overlay_sends_mail_to_mailpit_without_relay_settings(tmp_path):
    """No relay configured, mailpit in the dev services: config.php gets Mailpit (rendered, not deployed)."""
    result = play(tmp_path, "compose_stack_source_mode=registry", "compose_stack_web_port=18391",
                  '{"compose_stack_dev_services": ["mailpit"]}',
                  json.dumps({"compose_stack_resources": RESOURCES, "compose_stack_mariadb_settings": MARIADB_SETTINGS}),
                  tags="compose_stack_preflight,compose_stack_install,compose_stack_configure")
    assert result.returncode == 0, result.stdout[-3000:]
    project = tmp_path / "project"
    check = subprocess.run(["docker", "compose", "-f", "compose.yml", "-f", "compose.dev.yml", "config", "--format", "json"],
                           cwd=project, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    services = json.loads(check.stdout)["services"]
    for name in ("web", "cron"):
        env = services[name]["environment"]
        assert env["MOODLE_SMTP_HOSTS"] == "mailpit:1025" and env["MOODLE_SMTP_SECURE"] == ""
        assert env["MOODLE_SMTP_USER"] == "" and "MOODLE_NOREPLY_ADDRESS" not in env
    assert services["mailpit"]["image"] == "axllent/mailpit:v1.33.1"
    assert "MP_SMTP_AUTH_FILE" not in services["mailpit"]["environment"]
    assert (project / "secrets" / "smtp_password").read_text() == ""
    # InnoDB derived from the db service's memory limit (6G): half for the pool, a quarter of that for the log
    cnf = mariadb_cnf(project)
    assert (cnf["innodb_buffer_pool_size"], cnf["innodb_log_file_size"]) == ("3072M", "768M"), cnf
    assert cnf["collation-server"] == "utf8mb4_unicode_ci" and cnf["innodb_flush_log_at_trx_commit"] == "2", cnf

