"""Fixtures of the stack tests live in stack_helpers.py (shared with ../acceptance)."""

from stack_helpers import container, dockerc, secrets  # noqa: F401
