"""Real-Moodle acceptance (make acceptance MOODLE_SRC=...): shares the stack test helpers."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
os.environ.setdefault("MOODLE_STACK_PROJECT", "moodleacc")
os.environ.setdefault("MOODLE_STACK_URL", "http://127.0.0.1:8088")

from stack_helpers import container, dockerc, secrets  # noqa: F401  (fixtures re-exported)
