"""Issue 13 section 3 "Ship it", end to end: the native gradebook built, put into the site image, deployed,
verified by the site role, answering inside the running container, and loaded the way the chart runs the image.

What runs for real: the artifacts of moodle.platform.native_build (``make native-artifacts``: the extension
built against bookworm's PHP 8.2, local_nativegrades with its WASM bundle, SHA256SUMS; ``NATIVE_ARTIFACTS``);
moodle.platform.moodle_image building the site image with ``moodle_image_native_gradebook: true`` (runtime ->
native layer -> app); ``site.yml`` deploying it with Docker Compose (project ``nativeship``,
http://127.0.0.1:8790, inventory tests/native/shipping/inventory) and moodle.platform.moodle_site checking
``php -m`` and the plugin's installed version in the running container; the extension, through the plugin's
engine switch, regrading the golden gradebooks (Moodle 4.5's own results) inside that container.
The refusals run the same playbooks with broken artifacts or an image without the extension.

The site is the Moodle STAND-IN (tests/fixtures/moodle-standin), NOT Moodle.  Like Moodle it records
local_nativegrades' ``$plugin->version`` as the plugin setting ``version`` (mdl_config_plugins) at install and
upgrade, so moodle_site's version check compares real state.  It does not prove: that Moodle installs the
plugin (db/install.xml, db/tasks.php, db/services.php, ``$plugin->requires``), that Moodle's autoloader finds
its classes (the in-container check loads them with tests/native/plugin_autoload.php), that the scheduled
regrade task, the CLI or the web service run (tests/native/golden/plugin_check.sh runs the plugin's compare CLI
in real Moodle, given MOODLE_SRC), nor anything on a Kubernetes cluster (the chart's pod is imitated with
``docker run``).
The one addition to the deployment: a Compose overlay (``moodle_platform_compose_extra_files``) bind-mounts a
probe page read-only into the web container's document root, so web's PHP itself can be asked (the image's
root file system is read-only; nothing can be written into /var/www/moodle).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from k8s.role_images import chart_like_run

import stacktest
from stacktest import ROOT, STANDIN_TREE

INVENTORY = ROOT / "tests" / "native" / "shipping" / "inventory"
PROJECT = "nativeship"
WEB = f"{PROJECT}-web-1"
WEB_URL = "http://127.0.0.1:8790"
MODULE = "moodle_gradebook"
APACHE_PROBE_DIR = "/var/www/moodle/nativeship-probe"
ARTIFACTS = Path(os.environ.get("NATIVE_ARTIFACTS", "/var/cache/moodle-platform/native/artifacts"))
GOLDEN = ROOT / "tests" / "native" / "golden"
SOURCE = {"moodle_image_source_type": "local", "moodle_image_source_path": str(STANDIN_TREE),
          "moodle_image_native_artifacts_dir": str(ARTIFACTS)}


def docker(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, input=stdin, timeout=600, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:6])} failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
                             f"\n{proc.stderr[-3000:]}")
    return proc


def web_php(code: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """php -r CODE in the site's web container as www-data (the user Moodle's cron and Apache run as)."""
    return docker("exec", "-i", "--user", "www-data", "-w", "/var/www/moodle", WEB, "php", "-r", code,
                  stdin=stdin, check=check)


def code_version() -> str:
    text = (ARTIFACTS / "moodle/local/nativegrades/version.php").read_text()
    return re.search(r"\$plugin->version\s*=\s*(\d+)\s*;", text).group(1)


def installed_version() -> str:
    return web_php("define('CLI_SCRIPT', true); require 'config.php';"
                   " echo json_encode(get_config('local_nativegrades', 'version'));").stdout.strip()


def flat(out: str) -> str:
    return " ".join(out.split())


def container_state() -> tuple[str, str, str]:
    out = docker("inspect", "--format", "{{.Id}} {{.State.StartedAt}} {{.Config.Image}}", WEB).stdout.split()
    return out[0], out[1], out[2]


def apache_probe_overlay(directory: Path) -> Path:
    """A Compose overlay that bind-mounts a probe page read-only at /var/www/moodle/nativeship-probe/ in web:
    it reports the PHP SAPI that runs it and whether that PHP has the module.  Test-only, not in the product."""
    www = directory / "www"
    www.mkdir(mode=0o755)
    www.chmod(0o755)  # Apache runs as uid 33
    page = www / "index.php"
    page.write_text(f'<?php echo php_sapi_name(), " ", extension_loaded("{MODULE}") '
                    f'? "loaded " . moodle_gradebook_version() : "missing";\n')
    page.chmod(0o644)
    overlay = directory / "compose.apache-probe.yml"
    overlay.write_text(json.dumps({"services": {"web": {"volumes": [f"{www}:{APACHE_PROBE_DIR}:ro"]}}}))
    return overlay


@pytest.fixture(scope="module")
def site(figures, tmp_path_factory):
    """The stand-in site deployed fresh by site.yml from an image with the native gradebook (plus the probe
    overlay); its playbook output.  Removed with its volumes afterwards (NATIVESHIP_KEEP_STACK=1 leaves it)."""
    if not (ARTIFACTS / "SHA256SUMS").is_file():
        pytest.fail(f"no native artifacts in {ARTIFACTS} (make native-artifacts)")
    if not (STANDIN_TREE / "version.php").is_file():
        pytest.fail(f"no stand-in tree at {STANDIN_TREE} (make standin)")
    overlay = apache_probe_overlay(tmp_path_factory.mktemp("apache-probe"))
    stacktest.destroy_project(PROJECT)
    started = time.time()
    rc, out = stacktest.playbook([INVENTORY], "../site.yml",
                                 {**SOURCE, "moodle_platform_compose_extra_files": [str(overlay)]},
                                 check=False, timeout=3600)
    figures.append(f"native shipping: site.yml with moodle_image_native_gradebook (build + fresh stand-in site) "
                   f"{time.time() - started:.0f} s")
    assert rc == 0, out[-6000:]
    yield out
    if os.environ.get("NATIVESHIP_KEEP_STACK") != "1":
        stacktest.destroy_project(PROJECT)


def test_site_role_verified_module_and_plugin_version(site):
    assert f"local_nativegrades {code_version()} installed, {MODULE} loaded" in site, site[-4000:]


def test_php_m_in_the_running_web_container_lists_the_module(site):
    modules = docker("exec", WEB, "php", "-m").stdout.split()
    assert MODULE in modules, modules


def test_web_php_loads_the_module_too(site):
    """php -m is the CLI; Moodle's web requests run in web's own PHP runtime, with its own conf.d: a PHP-FPM
    pool by default in Compose (compose_stack_php_runtime fpm).  The probe page the test's overlay mounts
    (apache_probe_overlay) asks that PHP: it must name the fpm-fcgi SAPI and have the module."""
    env = json.loads(docker("inspect", "-f", "{{json .Config.Env}}", WEB).stdout)
    assert "MOODLE_PHP_SAPI=fpm" in env, env
    out = subprocess.run(["curl", "-s", "-m", "30", f"{WEB_URL}/nativeship-probe/"],
                         capture_output=True, text=True, check=False).stdout
    assert out.startswith("fpm-fcgi loaded "), out


def test_extension_and_plugin_files_are_the_built_artifacts(site):
    sums = (ARTIFACTS / "SHA256SUMS").read_text().splitlines()
    plugin = [line.replace("  moodle/", "  ", 1) for line in sums if "  moodle/local/nativegrades/" in line]
    assert any(line.endswith("  local/nativegrades/version.php") for line in plugin), sums
    check = docker("exec", "-i", "-w", "/var/www/moodle", WEB, "sha256sum", "--check", "--strict", "-",
                   stdin="\n".join(plugin) + "\n", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    so_sum = next(line.split()[0] for line in sums if line.endswith("  php/moodle_gradebook.so"))
    ext_dir = docker("exec", WEB, "php", "-r", "echo ini_get('extension_dir');").stdout.strip()
    in_image = docker("exec", WEB, "sha256sum", f"{ext_dir}/moodle_gradebook.so").stdout.split()[0]
    assert in_image == so_sum


def test_installed_plugin_version_equals_version_php(site):
    assert installed_version() == json.dumps(code_version())


def golden_cases() -> list[dict]:
    cases = []
    for name in ("cases.json", "cases_site.json"):
        cases += json.loads((GOLDEN / name).read_text())["cases"]
    return cases


def regrade_request(cases: list[dict]) -> str:
    """The cases as the engines take them (course JSON, pack('e*') grades, flag bytes), JSON for a PHP's stdin."""
    return json.dumps([{"course": json.dumps(c["course"]), "nusers": c["nusers"],
                        "flags": base64.b64encode(bytes(c["flags"])).decode(),
                        "grades": base64.b64encode(struct.pack(f"<{len(c['cells'])}d", *c["cells"])).decode()}
                       for c in cases])


# PHP that regrades every case on stdin with $regrade and prints {"results": [{final, hasvalue}], "seconds"}.
REGRADE_LOOP = r"""
$out = ['results' => []];
$started = microtime(true);
foreach (json_decode(stream_get_contents(STDIN), true) as $c) {
    $r = $regrade($c['course'], base64_decode($c['grades']), base64_decode($c['flags']), $c['nusers']);
    $out['results'][] = ['final' => base64_encode($r['final']), 'hasvalue' => base64_encode($r['hasvalue'])];
}
$out['seconds'] = microtime(true) - $started;
$out['engine'] = $engine ?? null;
$out['version'] = moodle_gradebook_version();
echo json_encode($out);
"""


def assert_moodles_results(cases: list[dict], out: dict) -> None:
    """Every final grade (and every empty cell) as Moodle 4.5 stored it for the golden gradebook."""
    crate = re.search(r'^version = "([^"]+)"', (ROOT / "native/Cargo.toml").read_text(), re.M).group(1)
    assert out["version"] == crate
    assert len(out["results"]) == len(cases)
    for case, result in zip(cases, out["results"], strict=True):
        final = struct.unpack(f"<{len(case['cells'])}d", base64.b64decode(result["final"]))
        has = list(base64.b64decode(result["hasvalue"]))
        exp = case["expected"]
        assert has == exp["hasvalue"], f"{case['name']}: empty/non-empty cells differ from Moodle"
        for k, value in enumerate(final):
            if has[k]:
                assert value == exp["final"][k], f"{case['name']} cell {k}: {value!r} != Moodle {exp['final'][k]!r}"


def test_native_engine_regrades_moodles_golden_gradebooks_in_the_container(site, figures):
    """The plugin's engine switch, in the site's container with the site's config, picks the extension and
    reproduces what Moodle 4.5 stored for every golden gradebook."""
    cases = golden_cases()
    assert len(cases) >= 100
    autoload = (ROOT / "tests/native/plugin_autoload.php").read_text().removeprefix("<?php")
    code = autoload + r"""
define('CLI_SCRIPT', true);
require '/var/www/moodle/config.php';
local_nativegrades_autoload('/var/www/moodle/local/nativegrades');
$engine = \local_nativegrades\local\engine::name();
$regrade = fn(...$args) => \local_nativegrades\local\engine::regrade(...$args);
""" + REGRADE_LOOP
    out = json.loads(web_php(code, stdin=regrade_request(cases)).stdout)
    assert out["engine"] == "native", "the plugin does not use the extension in the site's container"
    assert_moodles_results(cases, out)
    figures.append(f"native shipping: {len(cases)} golden gradebooks regraded by the extension in {WEB} "
                   f"in {out['seconds'] * 1000:.0f} ms")


def test_chart_like_run_of_the_image_lists_the_module(site):
    """The same image started the way charts/moodle runs its web pod (uid 33, read-only root, the chart's
    emptyDirs as tmpfs, here no network): the module is listed and regrades golden gradebooks as Moodle did."""
    image = container_state()[2]
    args = chart_like_run(image, "--rm", "-i", "--network", "none", "--entrypoint", "php")
    modules = docker(*args, "-m").stdout.split()
    assert MODULE in modules, modules
    cases = golden_cases()[:25]
    out = docker(*args, "-r", "$regrade = 'moodle_gradebook_regrade';" + REGRADE_LOOP, stdin=regrade_request(cases))
    assert_moodles_results(cases, json.loads(out.stdout))



def test_chart_like_apache_with_mod_php_loads_the_module(site, tmp_path):
    """The chart runs the image's default runtime, Apache with mod_php: the same image started the chart's way
    (no network; the probe page mounted read-only), asked through Apache inside the container, must name the
    apache2handler SAPI and have the module."""
    image = container_state()[2]
    apache_probe_overlay(tmp_path)
    args = chart_like_run(image, "-d", "--network", "none", "-v", f"{tmp_path / 'www'}:{APACHE_PROBE_DIR}:ro")
    container = docker(*args, "web").stdout.strip()
    try:
        out = ""
        for _ in range(30):
            out = docker("exec", container, "curl", "-s", "-m", "10", "http://localhost:8080/nativeship-probe/",
                         check=False).stdout
            if out:
                break
            time.sleep(1)
        assert out.startswith("apache2handler loaded "), (out, docker("logs", container, check=False).stderr[-2000:])
    finally:
        docker("rm", "-f", container, check=False)


def test_version_check_compares_real_state(site):
    """An installed version older than the code (a plugin upgrade not yet applied) fails moodle_site naming both
    versions; Moodle's upgrade (here the stand-in's) records the code version and the check passes again."""
    version = code_version()
    older = str(int(version) - 1)
    web_php(f"define('CLI_SCRIPT', true); require 'config.php'; set_config('version', '{older}', 'local_nativegrades');")
    rc, out = stacktest.playbook([INVENTORY], "../tests/native/shipping/site_check.yml", check=False)
    assert rc != 0
    assert f"code version {version}, installed version {older}" in flat(out), out[-3000:]
    upgrade_cli = ("exec", "--user", "www-data", "-w", "/var/www/moodle", WEB, "php", "admin/cli/upgrade.php")
    pending = docker(*upgrade_cli, "--is-pending", check=False)
    assert pending.returncode == 2, pending.stdout + pending.stderr
    upgrade = docker(*upgrade_cli, "--non-interactive")
    assert "-->local_nativegrades" in upgrade.stdout, upgrade.stdout
    assert installed_version() == json.dumps(version)


@pytest.mark.parametrize("damage", ["missing directory", "extension changed", "extension not listed",
                                    "plugin file changed"])
def test_bad_artifacts_are_refused_in_preflight(site, tmp_path, damage):
    """moodle_image refuses in its preflight, naming the file, before any image is built or container changed."""
    artifacts = tmp_path / "artifacts"
    if damage == "missing directory":
        expected = "lacks SHA256SUMS, php/moodle_gradebook.so, moodle/local/nativegrades/version.php"
    else:
        shutil.copytree(ARTIFACTS, artifacts)
        if damage == "extension changed":
            with (artifacts / "php/moodle_gradebook.so").open("ab") as f:
                f.write(b"\0")
            expected = "php/moodle_gradebook.so: FAILED"
        elif damage == "extension not listed":
            sums = artifacts / "SHA256SUMS"
            sums.write_text("".join(line for line in sums.read_text().splitlines(keepends=True)
                                    if not line.endswith("  php/moodle_gradebook.so\n")))
            expected = "php/moodle_gradebook.so: not listed"
        else:
            (artifacts / "moodle/local/nativegrades/lib.php").write_text("<?php // changed after the build\n")
            expected = "moodle/local/nativegrades/lib.php: FAILED"
    before = container_state()
    rc, out = stacktest.playbook([INVENTORY], "compose.yml", {**SOURCE, "moodle_image_native_artifacts_dir": str(artifacts)},
                                 check=False)
    assert rc != 0
    assert expected in flat(out), out[-3000:]
    assert "moodle_image : Build the" not in out and "compose_stack :" not in out, "failed after the preflight"
    assert container_state() == before


def test_site_without_the_extension_is_refused_before_install(site):
    """An image built without the native layer while the site says native gradebook: moodle_site stops in its
    preflight, naming the module, before the install or any setting (runs last: it replaces the site's image)."""
    rc, out = stacktest.playbook([INVENTORY], "compose.yml", {**SOURCE, "moodle_image_native_gradebook": False,
                                                             "moodle_site_native_gradebook": True}, check=False)
    assert rc != 0
    assert f"php -m in {WEB} does not list {MODULE} although the native gradebook is enabled" in flat(out), out[-3000:]
    assert "moodle_site : Install" not in out and "moodle_site : Caches" not in out
    assert MODULE not in docker("exec", WEB, "php", "-m").stdout.split(), "the redeployed image still has the module"
