"""cgroup_exporter.py on synthetic cgroup v1 and v2 trees (files laid out as the kernel and dockerd do)."""

import importlib.util
import json

import pytest

from conftest import ROLE

CID_WEB = "a" * 64
CID_OTHER = "b" * 64


def _load(monkeypatch, cgroup_root, containers_dir, project="monmol"):
    monkeypatch.setenv("CGROUP_EXPORTER_CGROUP_ROOT", str(cgroup_root))
    monkeypatch.setenv("CGROUP_EXPORTER_CONTAINERS_DIR", str(containers_dir))
    monkeypatch.setenv("CGROUP_EXPORTER_PROJECT", project)
    spec = importlib.util.spec_from_file_location("cgroup_exporter", ROLE / "files/exporters/cgroup_exporter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _container(containers_dir, cid, name, project, service):
    (containers_dir / cid).mkdir(parents=True)
    (containers_dir / cid / "config.v2.json").write_text(json.dumps({
        "Name": f"/{name}",
        "Config": {"Labels": {"com.docker.compose.project": project, "com.docker.compose.service": service},
                   "Env": ["SHOULD_NOT_APPEAR=1"]}}))


def _samples(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            out[series] = float(value)
    return out


def test_cgroup_v1(tmp_path, monkeypatch):
    root, containers = tmp_path / "cg", tmp_path / "containers"
    mem = root / "memory/docker" / CID_WEB
    mem.mkdir(parents=True)
    (mem / "memory.usage_in_bytes").write_text("1000\n")
    (mem / "memory.limit_in_bytes").write_text("2000\n")
    (mem / "memory.stat").write_text("cache 300\ntotal_inactive_file 200\n")
    cpu = root / "cpuacct/docker" / CID_WEB
    cpu.mkdir(parents=True)
    (cpu / "cpuacct.usage").write_text("2500000000\n")
    other = root / "memory/docker" / CID_OTHER
    other.mkdir(parents=True)
    (other / "memory.usage_in_bytes").write_text("5\n")
    (other / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    _container(containers, CID_WEB, "monmol-web-1", "monmol", "web")
    _container(containers, CID_OTHER, "someone-else-1", "other", "x")
    text = _load(monkeypatch, root, containers).collect()
    samples = _samples(text)
    labels = 'name="monmol-web-1",compose_project="monmol",compose_service="web",id="aaaaaaaaaaaa"'
    assert samples[f"container_memory_usage_bytes{{{labels}}}"] == 1000
    assert samples[f"container_memory_working_set_bytes{{{labels}}}"] == 800
    assert samples[f"container_spec_memory_limit_bytes{{{labels}}}"] == 2000
    assert samples[f"container_cpu_usage_seconds_total{{{labels}}}"] == pytest.approx(2.5)
    assert "someone-else" not in text, "containers of other Compose projects must be left out"
    assert "SHOULD_NOT_APPEAR" not in text


def test_cgroup_v2_unlimited_is_zero(tmp_path, monkeypatch):
    root, containers = tmp_path / "cg", tmp_path / "containers"
    d = root / "system.slice" / f"docker-{CID_WEB}.scope"
    d.mkdir(parents=True)
    (d / "memory.current").write_text("4096\n")
    (d / "memory.max").write_text("max\n")
    (d / "memory.stat").write_text("anon 1000\ninactive_file 96\n")
    (d / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1000000\n")
    _container(containers, CID_WEB, "monmol-db-1", "monmol", "db")
    samples = _samples(_load(monkeypatch, root, containers).collect())
    labels = 'name="monmol-db-1",compose_project="monmol",compose_service="db",id="aaaaaaaaaaaa"'
    assert samples[f"container_memory_working_set_bytes{{{labels}}}"] == 4000
    assert samples[f"container_spec_memory_limit_bytes{{{labels}}}"] == 0
    assert samples[f"container_cpu_usage_seconds_total{{{labels}}}"] == pytest.approx(1.5)
