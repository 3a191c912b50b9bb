"""(PYTHONPATH=collections) Print the least-privilege table (roles/compose_stack/files/privileges.yml) as the Markdown block of
docs/compose.md, or with --write replace that block in docs/compose.md.  tests/unit/test_privileges_doc.py
fails when the two differ."""

from __future__ import annotations

import sys
from pathlib import Path

from ansible_collections.moodle.platform.plugins.module_utils import _privileges

DOC = Path(__file__).resolve().parent.parent / "docs" / "compose.md"


def main(argv: list[str]) -> int:
    block = _privileges.markdown_table(_privileges.load_table())
    if argv[1:] != ["--write"]:
        sys.stdout.write(block)
        return 0
    text = DOC.read_text()
    begin, end = text.index(_privileges.DOC_BEGIN), text.index(_privileges.DOC_END) + len(_privileges.DOC_END) + 1
    DOC.write_text(text[:begin] + block + text[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
