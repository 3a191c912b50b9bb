"""Parity: the Rust core (PyO3), the pure-PHP engine and the PHP extension give identical results.

Every output the engines produce is what Moodle stores in DECIMAL(10,5) columns, so equality is
exact (byte for byte), not within a tolerance.
"""

from __future__ import annotations

import base64
import math
import os
import struct

from gen import gradebook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("NATIVE_PARITY_EXAMPLES", "3000"))

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=os.environ.get("NATIVE_PARITY_RANDOM") is None,
)


def decode(r: dict) -> dict:
    return {k: base64.b64decode(v) for k, v in r.items()}


def rust(core, course: str, grades: bytes, flags: bytes, nusers: int) -> dict:
    try:
        return dict(core.Course(course).regrade(grades, flags, nusers))
    except ValueError as e:
        return {"error": str(e)}


@SETTINGS
@given(gradebook())
def test_core_php_and_extension_agree(core, php, book):
    course, grades, flags, nusers = book
    want = rust(core, course, grades, flags, nusers)
    got = php.regrade(course, grades, flags, nusers)
    # The compiled course for the widget: the PHP engine writes exactly the core's (or rejects the
    # course as the core does).
    try:
        compiled = core.Course(course).compiled()
    except ValueError:
        compiled = None
    if compiled is None:
        assert "error" in got["php_compiled"], "the PHP engine compiled a course the core rejects"
    else:
        assert decode(got["php_compiled"]) == {"compiled": compiled}, _compiled_diff(compiled, got["php_compiled"])
    if "error" in want:
        # Same message from every implementation, as InvalidArgumentException in PHP.
        assert got["php"] == {"error": "InvalidArgumentException: moodle_gradebook_regrade: " + want["error"]}
        assert got["ext"] == got["php"]
        rows_error = "InvalidArgumentException: moodle_gradebook_regrade_rows: " + want["error"]
        assert got["php_rows"] == got["ext_rows"] == {"error": rows_error}
        return
    assert "error" not in got["php"], got["php"]
    assert "error" not in got["ext"], got["ext"]
    php_r, ext_r = decode(got["php"]), decode(got["ext"])
    assert ext_r == want, "extension differs from core"
    assert php_r == want, _diff(course, want, php_r)
    # The rows API (per-user arrays built by the engine) carries the same final grades.
    packed = {"final": want["final"], "hasvalue": want["hasvalue"]}
    assert decode(got["ext_rows"]) == packed, "extension rows API differs from core"
    assert decode(got["php_rows"]) == packed, "PHP engine rows API differs from core"
    # Regrading the course read back from its compiled form gives the same results.
    assert dict(core.Course.from_compiled(compiled).regrade(grades, flags, nusers)) == want, \
        "regrade of the compiled course differs"


def _diff(course: str, a: dict, b: dict) -> str:
    fa = struct.unpack(f"<{len(a['final']) // 8}d", a["final"])
    fb = struct.unpack(f"<{len(b['final']) // 8}d", b["final"])
    bad = [(k, x, y) for k, (x, y) in enumerate(zip(fa, fb, strict=True)) if x != y and not (math.isnan(x) and math.isnan(y))]
    return f"PHP engine differs from core at cells {bad[:5]} has={a['hasvalue']!r}/{b['hasvalue']!r} course={course}"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.one_of(
                st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
                st.floats(allow_nan=False, allow_infinity=False),
                st.decimals(min_value=-1000, max_value=1000, places=4).map(float),
            ),
            st.integers(-4, 8),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_php_round_port_matches_php(core, php, pairs):
    got = php.call({"op": "round", "values": [[v, p] for v, p in pairs]})["values"]
    for (v, p), want in zip(pairs, got, strict=True):
        assert core.php_round(v, p) == want, (v, p)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(min_value=-99999.99999, max_value=99999.99999, allow_nan=False),
            st.decimals(min_value=-1000, max_value=1000, places=6).map(float),
            st.integers(0, 10**7).map(lambda n: n / 10**6 + 5e-6),
        ),
        min_size=1,
        max_size=50,
    )
)
def test_decimal_rounding_port_matches_php(core, php, values):
    got = php.call({"op": "string14", "values": values})
    for v, s14, eng, d5 in zip(values, got["values"], got["engine"], got["decimal5"], strict=True):
        # The engine's (float)(string)$v helper is PHP's own conversion at precision=14 ...
        assert eng == s14
        # ... and both engines store the same DECIMAL(10,5) value.
        assert core.db_decimal5(v) == d5, v


def _compiled_diff(want: bytes, got: dict) -> str:
    if "error" in got:
        return f"PHP engine failed to compile: {got['error']}"
    w = struct.unpack(f"<{len(want) // 8}d", want)
    g_bytes = base64.b64decode(got["compiled"])
    g = struct.unpack(f"<{len(g_bytes) // 8}d", g_bytes)
    for k, (a, b) in enumerate(zip(w, g, strict=False)):
        if struct.pack("<d", a) != struct.pack("<d", b):
            return f"compiled course differs at value {k}: core {a!r}, PHP {b!r} (lengths {len(w)}, {len(g)})"
    return f"compiled course lengths differ: core {len(w)}, PHP {len(g)}"
