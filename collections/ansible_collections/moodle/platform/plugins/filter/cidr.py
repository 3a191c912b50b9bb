# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CIDR checks for the AWS network preflight (Python's ipaddress: no netaddr needed)."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


def _network(cidr):
    try:
        return ipaddress.ip_network(str(cidr), strict=True)
    except ValueError as exc:
        raise AnsibleFilterError(f"{cidr!r} is not a network in CIDR notation: {exc}") from exc


def cidr_overlaps(cidrs):
    """Every pair of overlapping networks in the list, as 'a overlaps b' strings (empty: none)."""
    networks = [_network(c) for c in cidrs]
    return [f"{a} overlaps {b}" for i, a in enumerate(networks) for b in networks[i + 1:] if a.overlaps(b)]


def cidr_outside(cidrs, container):
    """The networks of the list that are not inside the container network."""
    outer = _network(container)
    return [str(n) for n in (_network(c) for c in cidrs) if n.version != outer.version or not n.subnet_of(outer)]


class FilterModule:
    def filters(self):
        return {"cidr_overlaps": cidr_overlaps, "cidr_outside": cidr_outside}
