"""Make the in-repo collection importable as ansible_collections.moodle.platform in tests."""

import sys
from pathlib import Path

_COLLECTIONS = str(Path(__file__).resolve().parent / "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
