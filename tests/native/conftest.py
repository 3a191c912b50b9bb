"""Fixtures for the native gradebook tests: the PyO3 core module and a long-running PHP worker.

The PHP worker runs the pure-PHP engine of local_nativegrades and the moodle_gradebook extension
(``NATIVE_EXT``, the .so built by ``make native-build``).  A missing extension is a failure, not a
skip: the parity claim is about all three implementations.
"""

from __future__ import annotations

import base64
import json
import os
import pathlib
import subprocess

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


class PhpWorker:
    def __init__(self, ext: str | None):
        args = ["php", "-n", "-d", "memory_limit=1G", "-d", "precision=14", "-d", "serialize_precision=-1"]
        if ext:
            args += ["-d", f"extension={ext}"]
        args.append(str(HERE / "php_worker.php"))
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def call(self, req: dict) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"php worker died (exit {self.proc.poll()})")
        return json.loads(line)

    def regrade(self, course: str, grades: bytes, flags: bytes, nusers: int) -> dict:
        return self.call(
            {
                "op": "regrade",
                "course": course,
                "grades": base64.b64encode(grades).decode(),
                "flags": base64.b64encode(flags).decode(),
                "nusers": nusers,
            }
        )

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def ext_path() -> str:
    ext = os.environ.get("NATIVE_EXT", str(ROOT / "native/target/release/libmoodle_gradebook.so"))
    if not pathlib.Path(ext).is_file():
        pytest.fail(f"moodle_gradebook extension not built at {ext} (run: make native-build)")
    return ext


@pytest.fixture(scope="session")
def php(ext_path: str):
    w = PhpWorker(ext_path)
    info = w.call({"op": "info"})
    assert info["ext"], f"extension did not load into php: {info}"
    yield w
    w.close()


@pytest.fixture(scope="session")
def core():
    import moodle_gradebook_core  # the PyO3 module (native/gradebook-py)

    return moodle_gradebook_core
