# Copyright: moodle.platform contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database dumps as byte streams: checksum, size and per-table row counts as they pass through."""

from __future__ import annotations

import hashlib
import re

from ansible_collections.moodle.platform.plugins.module_utils._backup.common import CHUNK

INSERT_RE = re.compile(rb"^INSERT INTO `([^`]+)` VALUES ?")
SQL_STRING_RE = re.compile(rb"'(?:[^'\\]|\\.)*'", re.DOTALL)


class DumpScanner:
    """sha256, size and per-table row counts of a mariadb-dump stream, as it passes through.

    mariadb-dump escapes newlines inside strings, so lines are safe boundaries; an INSERT may span
    many lines (MariaDB 10.11 writes one row per line).  Outside string literals a dump row is
    ``(v, v, ...)`` with no nested parentheses, so each ``(`` starts one row.
    """

    def __init__(self):
        self.sha = hashlib.sha256()
        self.size = 0
        self.rows = {}
        self._rest = b""
        self._table = None

    def feed(self, block):
        self.sha.update(block)
        self.size += len(block)
        data = self._rest + block
        lines = data.split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self._line(line)

    def close(self):
        if self._rest:
            self._line(self._rest)
            self._rest = b""

    def _line(self, line):
        if self._table is None:
            if line.startswith(b"CREATE TABLE `"):
                self.rows.setdefault(line[14:line.index(b"`", 14)].decode(), 0)
                return
            match = INSERT_RE.match(line)
            if not match:
                return
            self._table = match.group(1).decode()
            line = line[match.end():]
        body = SQL_STRING_RE.sub(b"''", line)
        self.rows[self._table] = self.rows.get(self._table, 0) + body.count(b"(")
        if body.rstrip().endswith(b";"):
            self._table = None


COPY_RE = re.compile(rb"^COPY ([^ ]+) \(")
CREATE_RE = re.compile(rb"^CREATE TABLE ([^ ]+) \($")


def _pg_table(qualified):
    """``public.mdl_user`` / ``"public"."mdl_user"`` -> ``mdl_user``."""
    return qualified.decode().rsplit(".", 1)[-1].strip('"')


class PgDumpScanner(DumpScanner):
    """sha256, size and per-table row counts of a plain-format pg_dump stream.

    pg_dump writes table data as ``COPY <table> (...) FROM stdin;``, one row per line (newlines in
    values are escaped as ``\\n``), ended by a line ``\\.``.
    """

    def _line(self, line):
        if self._table is not None:
            if line == b"\\.":
                self._table = None
            else:
                self.rows[self._table] += 1
            return
        match = CREATE_RE.match(line)
        if match:
            self.rows.setdefault(_pg_table(match.group(1)), 0)
            return
        match = COPY_RE.match(line)
        if match and line.endswith(b"FROM stdin;"):
            self._table = _pg_table(match.group(1))
            self.rows.setdefault(self._table, 0)


def scanner_for(engine):
    """The scanner of a dump of ``engine`` (manifest database.engine)."""
    return PgDumpScanner() if engine == "postgresql" else DumpScanner()


def pipe_through(source, sink, scanner):
    while True:
        block = source.read(CHUNK)
        if not block:
            break
        scanner.feed(block)
        sink.write(block)
    scanner.close()
