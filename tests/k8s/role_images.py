"""The images the collection's roles build, for the Kubernetes suites (tests/k8s, tests/k8s_e2e):
moodle_image FROM the Moodle STAND-IN test fixture (tests/fixtures/moodle-standin, materialized by
`make standin`; not Moodle) and, when asked, service_images' MariaDB and Redis; for the operator's
day-2 scenarios the backup engine image (moodle.platform.backup, tasks_from image.yml) and the
stand-in's variant B with its injected upgrade failure. One playbook run of the real roles per call;
their content-hash tags make a second run a cache check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "build" / "moodle-standin"
# The chart's emptyDirs (charts/moodle/templates/_helpers.tpl moodle.volumeMounts), as tmpfs.
CHART_TMPFS = ["/tmp", "/var/run/apache2", "/var/log/apache2", "/var/www/moodledata"]  # noqa: S108


def chart_like_run(image: str, *extra: str) -> list[str]:
    """`docker` arguments that start ``image`` the way charts/moodle runs its web pod: uid/gid 33, read-only
    root filesystem, no capabilities, tmpfs where the chart mounts emptyDirs, MOODLE_HTTP_PORT=8080."""
    cmd = ["run", "--user", "33:33", "--read-only", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges", "-e", "MOODLE_HTTP_PORT=8080"]
    for path in CHART_TMPFS:
        cmd += ["--tmpfs", f"{path}:rw,uid=33,gid=33,mode=0770"]
    return cmd + list(extra) + [image]

PLAYBOOK = """
- name: Build the Moodle image from the stand-in (test fixture){services_title}
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: moodle.platform.moodle_image
      vars:
        moodle_image_source_type: local
        moodle_image_source_path: "{{{{ standin }}}}"
        moodle_image_cache_dir: "{{{{ cache }}}}/moodle_image"
        moodle_image_config_dbtype: "{{{{ db_type }}}}"
{services_role}  post_tasks:
    - name: Write the image references
      ansible.builtin.copy:
        content: "{{{{ {refs} | to_json }}}}"
        dest: "{{{{ out }}}}"
        mode: "0644"
"""
SERVICES_ROLE = """    - role: moodle.platform.service_images
      vars:
        service_images_cache_dir: "{{ cache }}/service_images"
        service_images_db_type: "{{ db_type }}"
"""

# The backup engine image exactly as `ansible-playbook moodle.platform.backup_image` builds it (the
# role's image.yml entry point), and the stand-in's variant B (a newer version.php) whose
# upgrade.php --non-interactive writes a partial change and exits 1 (build arg
# MOODLE_STANDIN_UPGRADE_FAIL, tests/fixtures/moodle-standin/README.md): what an UpgradePlan whose
# upgrade fails half-way runs. Same repository as image A, so only the tag changes. And a code-only
# variant: the stand-in tree plus STANDIN_CODE_MARK (its front page names the build in a header; the
# version is A's, so no upgrade is pending) - what a blue-green UpgradePlan switches to.
# BACKUP_IMAGE_NAME_ENV renames the engine image for a by-hand run beside CI: the role tags <name>:1,
# which a shared Docker engine's other suites use.
BACKUP_IMAGE_NAME_ENV = "MOODLE_TEST_BACKUP_IMAGE_NAME"
BACKUP_IMAGE_TASK = """    - name: Build the backup engine image (moodle.platform.backup, image.yml)
      ansible.builtin.include_role:
        name: moodle.platform.backup
        tasks_from: image.yml
        public: true
      vars:
        backup_image_cache_dir: "{{ cache }}/backup_image"
        backup_image_name: "{{ backup_name | default('moodle-platform/moodle-backup', true) }}"
"""
OPERATOR_PLAYBOOK = """
- name: Build the backup engine image and the stand-in's failing variant B (test fixture)
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
""" + BACKUP_IMAGE_TASK + """    - name: Build the stand-in's variant B with the injected upgrade failure
      ansible.builtin.include_role:
        name: moodle.platform.moodle_image
        public: true
      vars:
        moodle_image_source_type: local
        moodle_image_source_path: "{{ standin }}"
        moodle_image_cache_dir: "{{ cache }}/moodle_image"
        moodle_image_build_args:
          MOODLE_STANDIN_VERSION: B
          MOODLE_STANDIN_UPGRADE_FAIL: "1"
    - name: Keep variant B's reference
      ansible.builtin.set_fact:
        __upgrade_fail_ref: "{{ moodle_image_ref }}"
    - name: Build the stand-in's code-only variant (same version.php, STANDIN_CODE_MARK)
      ansible.builtin.include_role:
        name: moodle.platform.moodle_image
        public: true
      vars:
        moodle_image_source_type: local
        moodle_image_source_path: "{{ standin_code_only }}"
        moodle_image_cache_dir: "{{ cache }}/moodle_image"
    - name: Write the image references
      ansible.builtin.copy:
        content: "{{ {'backup': backup_image_ref, 'moodle_upgrade_fail': __upgrade_fail_ref,
                      'moodle_code_only': moodle_image_ref} | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
"""


def _run_play(play_text: str, cache: Path | str, timeout: int, **extra: str) -> dict[str, str]:
    """ansible-playbook PLAY_TEXT on this host (the real roles, the Docker engine); the play writes
    its image references as JSON to the file `out`, which is returned."""
    with tempfile.TemporaryDirectory(prefix="k8s-role-images-") as tmp:
        play, out = Path(tmp) / "build.yml", Path(tmp) / "refs.json"
        play.write_text(play_text)
        proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), str(play),
                               "-e", json.dumps({"standin": str(STANDIN), "cache": str(cache), "out": str(out), **extra})],
                              cwd=ROOT, timeout=timeout, capture_output=True, text=True)
        if proc.returncode != 0:
            raise AssertionError(f"building the role images failed (exit {proc.returncode}):\n{proc.stdout[-4000:]}"
                                 f"\n{proc.stderr[-2000:]}")
        return json.loads(out.read_text())


def build_role_images(cache: Path | str, *, services: bool = False, db_type: str = "mariadb",
                      timeout: int = 1800) -> dict[str, str]:
    """Run the roles; return {"moodle": ref} (+ "mariadb" or, with db_type pgsql, "postgresql", and "redis"
    with services=True). DB_TYPE is the site's database: the Moodle image's config.php fixes its dbtype.
    CACHE is the roles' build cache directory (each suite keeps its own)."""
    database = "'postgresql': service_images_postgresql_ref" if db_type == "pgsql" else \
        "'mariadb': service_images_mariadb_ref"
    refs = "{'moodle': moodle_image_ref" + (f", {database}, 'redis': service_images_redis_ref" if services else "") + "}"
    play_text = PLAYBOOK.format(services_title=" and the service images" if services else "",
                                services_role=SERVICES_ROLE if services else "", refs=refs)
    return _run_play(play_text, cache, timeout, db_type=db_type)


def build_operator_images(cache: Path | str, *, timeout: int = 1800) -> dict[str, str]:
    """{"backup": the moodle-backup image, "moodle_upgrade_fail": the stand-in's variant B that fails
    its upgrade, "moodle_code_only": the stand-in with STANDIN_CODE_MARK=codeonly} (see OPERATOR_PLAYBOOK)."""
    code_only = Path(cache) / "standin-code-only"
    shutil.rmtree(code_only, ignore_errors=True)
    shutil.copytree(STANDIN, code_only, symlinks=True)
    (code_only / "STANDIN_CODE_MARK").write_text("codeonly\n")
    return _run_play(OPERATOR_PLAYBOOK, cache, timeout, standin_code_only=str(code_only),
                     backup_name=os.environ.get(BACKUP_IMAGE_NAME_ENV, ""))


# PostgreSQL for the backup engine's direct mode and the chart's pgsql database: service_images'
# PostgreSQL image and the backup engine image (its PostgreSQL client), as the roles build them.
PG_PLAYBOOK = """
- name: Build the PostgreSQL image and the backup engine image
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Build the PostgreSQL image (moodle.platform.service_images, moodle_db_type pgsql)
      ansible.builtin.include_role:
        name: moodle.platform.service_images
        public: true
      vars:
        service_images_db_type: pgsql
        service_images_cache_dir: "{{ cache }}/service_images"
""" + BACKUP_IMAGE_TASK + """    - name: Write the image references
      ansible.builtin.copy:
        content: "{{ {'postgresql': service_images_postgresql_ref, 'redis': service_images_redis_ref,
                      'backup': backup_image_ref} | to_json }}"
        dest: "{{ out }}"
        mode: "0644"
"""


def build_pg_images(cache: Path | str, *, timeout: int = 1800) -> dict[str, str]:
    """{"postgresql", "redis", "backup"} image references (see PG_PLAYBOOK)."""
    return _run_play(PG_PLAYBOOK, cache, timeout, backup_name=os.environ.get(BACKUP_IMAGE_NAME_ENV, ""))
