# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the engine uses: its error, its log, safe file writes, the per-site lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sys
import tempfile
import time
from pathlib import Path

CHUNK = 1 << 20


class EngineError(Exception):
    """A failure with a message an operator can act on."""


def log(message):
    """Progress and errors go to stderr; stdout carries the JSON result only."""
    sys.stderr.write(f"[moodle-backup {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def tail(data, lines=6):
    """The last lines of a tool's output, on one line (for error messages)."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def redact(url):
    """A repository URL without credentials."""
    return re.sub(r"//[^/@]*@", "//***@", url)


def sql_ident(name):
    """A table/database name from a manifest or a config, safe to put between backticks."""
    if not re.match(r"^[A-Za-z0-9_]+$", str(name)):
        raise EngineError(f"unexpected SQL identifier {name!r} in the manifest")
    return name


def read_env_file(path):
    """KEY=value lines (the role's S3 credentials file)."""
    values = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise EngineError(f"cannot read the environment file {path}: {exc.strerror}") from exc
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


@contextlib.contextmanager
def run_lock(state_dir):
    """One engine run per site at a time (backup, restore, retention)."""
    Path(state_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(Path(state_dir) / "lock", "w", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise EngineError("another moodle-backup run holds the lock for this site") from exc
        yield


def write_atomic(path, text, mode=0o644):
    """Write by temp file + rename: readers see the old or the new content, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
