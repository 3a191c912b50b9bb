# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.moodle.platform.plugins.filter.compose import compose_extra_files

LABEL = "com.docker.compose.project.config_files"


def _container(files):
    return {"Config": {"Image": "x", "Labels": {LABEL: files}}}


def test_the_monitoring_overlay_is_kept_and_the_stacks_own_files_are_not():
    files = "/srv/moodle/compose.yml,/srv/moodle/compose.prod.yml,/srv/moodle/compose.monitoring.yml"
    assert compose_extra_files(_container(files)) == ["/srv/moodle/compose.monitoring.yml"]


def test_bench_and_dev_files_are_the_stacks_own():
    files = "/p/compose.yml,/p/compose.dev.yml,/p/compose.bench.yml,/p/site/compose.extra.yml"
    assert compose_extra_files(_container(files)) == ["/p/site/compose.extra.yml"]


def test_labels_alone_and_no_container():
    assert compose_extra_files({LABEL: "/p/compose.yml,/p/my-compose.yml"}) == ["/p/my-compose.yml"]
    assert compose_extra_files({}) == [] and compose_extra_files(None) == []
    assert compose_extra_files(_container("")) == []


def test_not_a_container_is_refused():
    with pytest.raises(AnsibleFilterError, match="expects a container"):
        compose_extra_files("compose.yml")
