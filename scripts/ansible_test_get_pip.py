#!/usr/bin/env python3
# Copyright (c) moodle.platform maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline stand-in for pypa's get-pip.py, which ansible-test downloads from ci-files.testing.ansible.com.

ansible-test creates an empty virtual environment per sanity test and bootstraps pip into it by running
the cached get-pip script (~/.ansible/test/cache/get_pip_<version>.py) as
``get-pip.py --disable-pip-version-check pip==<version> --no-setuptools --no-wheel``.
scripts/ansible-test seeds that cache with this file: pip comes from the interpreter's own ensurepip
wheel (no download), then that pip installs what was asked, like every other pinned requirement.
"""

from __future__ import annotations

import ensurepip
import os
import subprocess
import sys

# get-pip.py options that `pip install` does not know (get-pip.py itself never installs them).
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    # ensurepip sets PIP_CONFIG_FILE=/dev/null in os.environ; the install after it must see the pip
    # configuration (index, certificates) as every other ansible-test pip run does.
    environment = dict(os.environ)
    ensurepip.bootstrap(upgrade=True)
    requested = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
    pip = [sys.executable, "-m", "pip"]
    subprocess.run([*pip, "install", *requested], check=True, env=environment)
    if "--no-setuptools" in sys.argv:  # ensurepip always adds setuptools; get-pip.py would not have
        subprocess.run([*pip, "uninstall", "--yes", "--quiet", "setuptools"], check=True, env=environment)


if __name__ == "__main__":
    main()
