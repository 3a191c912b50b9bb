# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""moodle-backup: the backup engine of moodle.platform, one package for every place it runs.

Imported by name everywhere (``ansible_collections.moodle.platform.plugins.module_utils._backup``):
the ``moodle-backup`` launcher on Docker hosts and in the backup image runs
``python3 -m ansible_collections.moodle.platform.plugins.module_utils._backup.cli``; moodle-operator
imports ``manifest`` and ``moodle_version``; the Moodle modules import ``moodle_version``.

Modules, by concern: ``moodle_version`` (version.php, branches), ``manifest`` (the backup manifest
format, docs/backup-manifest.md), ``metrics`` (Prometheus textfiles), ``common`` (errors, logging,
files), ``config``, ``restic``, ``sites`` (Compose host or direct access), ``stream`` (dump
scanning), ``backup``, ``verify``, ``restore``, ``drill``, ``retention``, ``schedule``, ``migrate``,
``cli``.  Standard library only (``yaml`` is imported where needed and its absence reported), Python 3.

Keep this file free of imports: Ansible ships the package ``__init__`` with every module that uses a
part of it.
"""
