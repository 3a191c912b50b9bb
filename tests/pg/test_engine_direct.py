"""The backup engine's DIRECT mode on PostgreSQL: what the Kubernetes backup/restore Jobs (chart, operator)
and the scheduler container run.  The engine reaches the database over TCP as the site's own user (a
libpq password file, no superuser, no docker exec) and moodledata at a mounted path.

Real parts: a throwaway PostgreSQL server from the project's own image (service_images, the version the
chart runs), the backup engine image (moodle.platform.backup image.yml: its pg_dump/psql, uid 33, a
read-only root file system), a local restic repository.  What this does NOT prove: Kubernetes itself (the
Job spec, the Secret mounts; tests/k8s and tests/k8s_e2e do), S3, and a Moodle schema - the tables are
hand-made Moodle-like ones (the stand-in site of the rest of tests/pg is not involved).

backup -> damage (a dropped table, changed and added rows, a removed file) -> restore -> every table's rows,
the sequences, the schema as pg_dump sees it and the files equal; the restored database backs up and
restores again to the same state.  And the refusal: this host's pg_dump (Debian bookworm: 15) against the
server (17) is refused with a message before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from k8s.role_images import build_pg_images

from stacktest import ENGINE, ENGINE_ENV, run

SCRATCH = Path("/var/tmp/moodle-platform-pg-direct")  # noqa: S108 - fixed path, root-only test host
CACHE = Path("/var/cache/moodle-platform/pg-direct")
NAME = "moodle-pg-direct"
NETWORK = f"{NAME}-net"
SERVER = f"{NAME}-db"
HOST_PORT = 8611  # only for the refusal check with this host's pg_dump
PROJECT = "pgdirect"


def docker(*args, check=True):
    return run(["docker", *args], check=check)


def superuser_psql(sql, database="moodle"):
    """Rows of ``sql`` as the postgres superuser over the server's Unix socket (test side only)."""
    out = docker("exec", "--user", "postgres", SERVER, "psql", "-X", "-q", "--no-align", "--tuples-only",
                 "--field-separator=\t", "-v", "ON_ERROR_STOP=1", f"--dbname={database}", "-c", sql).stdout
    return [line.split("\t") for line in out.decode().splitlines()]


def database_state():
    """{table: sha256 of its rows in id order} and every sequence's last value, read by the superuser."""
    tables = [r[0] for r in superuser_psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")]
    state = {}
    for table in tables:
        out = docker("exec", "--user", "postgres", SERVER, "psql", "-X", "-q", "--dbname=moodle", "-c",
                     f'COPY (SELECT * FROM "{table}" ORDER BY 1) TO STDOUT').stdout  # noqa: S608 - names from pg_tables
        state[table] = hashlib.sha256(out).hexdigest()
    for name, value in superuser_psql("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"):
        state[f"sequence {name}"] = value
    owners = superuser_psql("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    state["table owners"] = sorted(r[0] for r in owners)
    # The schema as pg_dump sees it (the public schema's owner, grants and comment included); pg_dump 17.6+
    # writes a random \restrict key into every dump, which is left out.
    schema = docker("exec", "--user", "postgres", SERVER, "pg_dump", "--schema-only", "moodle").stdout
    state["schema"] = hashlib.sha256(b"\n".join(line for line in schema.splitlines()
                                                if not line.startswith((b"\\restrict", b"\\unrestrict")))).hexdigest()
    return state


def file_hashes(root):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def images():
    return build_pg_images(CACHE)


@pytest.fixture(scope="module")
def server(images):
    """PostgreSQL from the project's image on its own network (and 127.0.0.1:8611), initialised as the
    chart's in-chart database is: database and owner ``moodle`` from the Secret's files."""
    docker("rm", "-f", SERVER, check=False)
    docker("network", "rm", NETWORK, check=False)
    if SCRATCH.exists():
        shutil.rmtree(SCRATCH)
    secrets_dir = SCRATCH / "secrets"
    secrets_dir.mkdir(parents=True)
    for key in ("db_password", "db_root_password"):
        # a password with the characters libpq's password file escapes
        (secrets_dir / key).write_text(f"p:w\\{secrets.token_hex(8)}\n")
        (secrets_dir / key).chmod(0o644)  # read by uid 33 (engine) and the server's entry point
    docker("network", "create", NETWORK)
    docker("run", "-d", "--name", SERVER, "--network", NETWORK, "--network-alias", "db",
           "-p", f"127.0.0.1:{HOST_PORT}:5432", "-v", f"{secrets_dir}:/run/secrets:ro",
           "-e", "POSTGRES_DB=moodle", "-e", "POSTGRES_USER=moodle",
           "-e", "POSTGRES_PASSWORD_FILE=/run/secrets/db_password",
           "-e", "POSTGRES_SUPERUSER_PASSWORD_FILE=/run/secrets/db_root_password", images["postgresql"])
    deadline = time.time() + 120
    while docker("exec", SERVER, "pg_isready", "-q", "-h", "127.0.0.1", "-U", "postgres", check=False).returncode:
        if time.time() > deadline:
            raise AssertionError(docker("logs", SERVER, check=False).stderr.decode()[-3000:])
        time.sleep(1)
    # Moodle-like tables created by the site's user (as Moodle creates its own), with awkward values.
    superuser_psql(
        "SET ROLE moodle; "
        "CREATE TABLE mdl_config (id BIGSERIAL PRIMARY KEY, name VARCHAR(255) UNIQUE NOT NULL, value TEXT NOT NULL); "
        "INSERT INTO mdl_config (name, value) VALUES ('version', '2024100706.00'), "
        "('release', '4.5.6 (Build: 20250811)'), ('branch', '405'); "
        "CREATE TABLE mdl_user (id BIGSERIAL PRIMARY KEY, username VARCHAR(100), description TEXT, picture BYTEA); "
        "INSERT INTO mdl_user (username, description, picture) SELECT 'user' || i, "
        "E'line one\\nline two\\ttab \\\\ backslash ''quote'' ñ 漢字 ' || i, sha256(i::text::bytea) "
        "FROM generate_series(1, 500) AS i; "
        "CREATE TABLE mdl_course (id BIGSERIAL PRIMARY KEY, fullname TEXT); "
        "INSERT INTO mdl_course (fullname) SELECT 'Course ' || i FROM generate_series(1, 40) AS i; "
        "CREATE TABLE mdl_empty (id BIGSERIAL PRIMARY KEY)")
    dataroot = SCRATCH / "moodledata"
    (dataroot / "filedir" / "ab" / "cd").mkdir(parents=True)
    for i in range(5):
        (dataroot / "filedir" / "ab" / "cd" / f"file{i}").write_bytes(os.urandom(2048 + i))
    (SCRATCH / "repo").mkdir()
    for path in (dataroot, *dataroot.rglob("*"), SCRATCH / "repo"):  # the engine runs as uid 33
        os.chown(path, 33, 33)
    yield {"dataroot": dataroot, "repo": SCRATCH / "repo", "secrets": secrets_dir,
           "restic_password": secrets.token_hex(16)}
    docker("rm", "-f", SERVER, check=False)
    docker("network", "rm", NETWORK, check=False)
    shutil.rmtree(SCRATCH, ignore_errors=True)


def engine_job(images, server, *args):
    """The engine image as the operator's Job runs it: uid 33, read-only root, /tmp writable, the
    database from MOODLE_DB_* and the password as a mounted file."""
    proc = docker("run", "--rm", "--network", NETWORK, "--user", "33:33", "--read-only", "--tmpfs", "/tmp:rw,uid=33",  # noqa: S108 - the container's own tmpfs
                  "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                  "-v", f"{server['secrets']}/db_password:/run/secrets/db_password:ro",
                  "-v", f"{server['dataroot']}:/moodledata", "-v", f"{server['repo']}:/repo",
                  "-e", "MOODLE_DB_TYPE=pgsql", "-e", "MOODLE_DB_HOST=db", "-e", "MOODLE_DB_PORT=5432",
                  "-e", "MOODLE_DB_NAME=moodle", "-e", "MOODLE_DB_USER=moodle",
                  "-e", "MOODLE_DB_PASSWORD_FILE=/run/secrets/db_password", "-e", "RESTIC_REPOSITORY=/repo",
                  "-e", f"RESTIC_PASSWORD={server['restic_password']}",
                  images["backup"], "moodle-backup", *args, "--project", PROJECT, "--dataroot", "/moodledata",
                  check=False)
    if proc.returncode != 0:
        raise AssertionError(f"moodle-backup {args} failed ({proc.returncode}):\n{proc.stdout.decode()[-3000:]}\n"
                             f"{proc.stderr.decode()[-3000:]}")
    return json.loads(proc.stdout), proc.stderr.decode()


def test_direct_backup_damage_restore_equal(images, server):
    before = database_state()
    files_before = file_hashes(server["dataroot"])
    assert before["table owners"] == ["moodle"]

    manifest, _ = engine_job(images, server, "backup")
    db = manifest["database"]
    assert db["engine"] == "postgresql" and db["server_version"].startswith("17")
    assert db["tables"] == {"mdl_config": 3, "mdl_course": 40, "mdl_empty": 0, "mdl_user": 500}
    assert manifest["moodle"]["version"] == "2024100706.00" and manifest["platform"] == "kubernetes"

    superuser_psql("DROP TABLE mdl_course; UPDATE mdl_user SET username = 'damaged' WHERE id < 100; "
                   "INSERT INTO mdl_user (username) VALUES ('intruder'); DELETE FROM mdl_config WHERE name = 'branch'")
    victim = next(p for p in server["dataroot"].rglob("file0"))
    victim.unlink()
    assert database_state() != before

    started = time.time()
    result, _ = engine_job(images, server, "restore", "--backup-id", manifest["backup_id"], "--maintenance-off")
    print(f"FIGURE direct-mode pgsql restore {time.time() - started:.1f}s ({db['size_bytes']} bytes dump)")
    assert result["restored"] is True and result["database"] == "moodle"
    assert database_state() == before
    assert file_hashes(server["dataroot"]) == files_before

    # The restored database backs up and restores again the same (its public schema is as initdb made it).
    again, _ = engine_job(images, server, "backup")
    assert again["database"]["tables"] == db["tables"]
    restored_again, _ = engine_job(images, server, "restore", "--backup-id", again["backup_id"], "--maintenance-off")
    assert restored_again["restored"] is True and database_state() == before


def test_a_pg_dump_older_than_the_server_is_refused_before_anything_is_written(server):
    """Uses this host's pg_dump (postgresql-client-15 on Debian bookworm); skipped where there is none or
    it is not older than the server."""
    if not shutil.which("pg_dump"):
        pytest.skip("no pg_dump on this host (apt-get install postgresql-client-15 to run this check)")
    client = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout
    server_num = int(superuser_psql("SHOW server_version_num")[0][0])
    if int(client.split(")")[1].split(".")[0]) >= server_num // 10000:
        pytest.skip(f"this host's pg_dump ({client.strip()}) is not older than the server ({server_num})")
    repo = SCRATCH / "refusal-repo"
    env = {**ENGINE_ENV, "MOODLE_DB_TYPE": "pgsql", "MOODLE_DB_HOST": "127.0.0.1", "MOODLE_DB_PORT": str(HOST_PORT),
           "MOODLE_DB_PASSWORD_FILE": str(server["secrets"] / "db_password"), "RESTIC_REPOSITORY": str(repo),
           "RESTIC_PASSWORD": server["restic_password"], "TMPDIR": str(SCRATCH)}
    proc = run([*ENGINE, "backup", "--project", PROJECT, "--dataroot", str(server["dataroot"])], check=False, env=env)
    assert proc.returncode == 1, proc.stdout.decode() + proc.stderr.decode()
    message = json.loads(proc.stdout)["msg"]
    client_major, server_major = int(client.split(")")[1].split(".")[0]), server_num // 10000
    assert (f"pg_dump is PostgreSQL {client_major} but the server 127.0.0.1 runs PostgreSQL {server_major}"
            in message), message
    listing = run(["restic", "-r", str(repo), "snapshots", "--json"], check=False,
                  env={**os.environ, "RESTIC_PASSWORD": server["restic_password"]})
    assert listing.returncode != 0 or json.loads(listing.stdout or b"[]") == [], "a refused backup wrote snapshots"
