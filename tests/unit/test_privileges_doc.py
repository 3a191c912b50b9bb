"""The privilege table in docs/compose.md is the one generated from roles/compose_stack/files/privileges.yml,
and every row of that file renders to the Compose keys the stack needs (no Docker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.moodle.platform.plugins.module_utils import _privileges

ROOT = Path(__file__).resolve().parents[2]
TABLE = _privileges.load_table()


def test_docs_carry_the_generated_table():
    doc = (ROOT / "docs" / "compose.md").read_text()
    assert _privileges.markdown_table(TABLE) in doc, "run: PYTHONPATH=collections python scripts/privileges_table.py --write"


def test_the_doc_check_can_fail():
    changed = {**TABLE, "web": {**TABLE["web"], "read_only": False}}
    assert _privileges.markdown_table(changed) not in (ROOT / "docs" / "compose.md").read_text()


@pytest.mark.parametrize("name", sorted(TABLE))
def test_every_row_is_complete_and_hardened(name):
    row = TABLE[name]
    keys = _privileges.compose_settings(row)
    assert keys["security_opt"] == ["no-new-privileges:true"] and keys["cap_drop"] == ["ALL"]
    assert all(str(reason).strip() for reason in row["cap_add"].values()), "every capability has its reason"
    if str(row["user"]).split(":")[0] == "0" or row["cap_add"]:
        assert str(row["why"]).strip(), f"{name}: root or a capability needs a why"


def test_drift_names_each_difference():
    row = TABLE["web"]
    inspect = {"Config": {"User": "0"}, "HostConfig": {"ReadonlyRootfs": False, "CapDrop": ["ALL"],
                                                        "CapAdd": ["CAP_NET_BIND_SERVICE"], "SecurityOpt": None,
                                                        "Tmpfs": {}, "Sysctls": None}}
    status = "Uid:\t0\t0\t0\t0\nNoNewPrivs:\t0\nCapEff:\t0000000000000400\n"
    found = _privileges.drift(row, inspect, status, "root:x:0:0::/root:/bin/sh\n")
    for what in ("Config.User", "ReadonlyRootfs", "CapAdd", "SecurityOpt", "Tmpfs", "Sysctls", "Uid", "NoNewPrivs",
                 "capabilities"):
        assert any(what in sentence for sentence in found), (what, found)
