"""The shipping test's figures (deployment times), printed as FIGURE lines at the end of the run."""

from __future__ import annotations

import pytest

FIGURES: list[str] = []


@pytest.fixture(scope="session")
def figures() -> list[str]:
    return FIGURES


def pytest_terminal_summary(terminalreporter):
    for line in FIGURES:
        terminalreporter.write_line(f"FIGURE {line}")
