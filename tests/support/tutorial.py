"""The DPVS tutorial the tests compare with: ../shared/TUTORIAL.md beside the repository.

CI clones the repository next to `shared/`; the tutorial's text stays there (it is the DPVS
project's prose, not ours), and a test that needs it fails when it is missing, never skips."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]       # the repository: tests/support/ is two down
PATH = ROOT.parent / "shared" / "TUTORIAL.md"


def text() -> str:
    """The tutorial's text; the calling test fails when the file is not there."""
    if not PATH.is_file():
        pytest.fail(f"{PATH} is missing (shared/ belongs beside the repository)", pytrace=False)
    return PATH.read_text()


def lines() -> list[str]:
    return text().splitlines()
