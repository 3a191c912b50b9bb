# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CIDR filters of the AWS network preflight."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.moodle.platform.plugins.filter.cidr import cidr_outside, cidr_overlaps


def test_disjoint_networks_have_no_overlaps():
    assert cidr_overlaps(["10.40.0.0/24", "10.40.1.0/24", "10.40.10.0/24"]) == []


def test_every_overlapping_pair_is_named():
    assert cidr_overlaps(["10.40.0.0/24", "10.40.0.128/25", "10.40.0.0/16"]) == [
        "10.40.0.0/24 overlaps 10.40.0.128/25", "10.40.0.0/24 overlaps 10.40.0.0/16",
        "10.40.0.128/25 overlaps 10.40.0.0/16"]


def test_networks_outside_the_vpc_are_returned():
    assert cidr_outside(["10.40.0.0/24", "10.41.0.0/24", "10.0.0.0/8"], "10.40.0.0/16") == ["10.41.0.0/24", "10.0.0.0/8"]


@pytest.mark.parametrize("bad", ["10.40.0.1/24", "10.40.0.0/33", "not-a-cidr"])
def test_malformed_cidrs_fail_with_the_value(bad):
    with pytest.raises(AnsibleFilterError, match="is not a network in CIDR notation"):
        cidr_overlaps(["10.40.0.0/24", bad])
