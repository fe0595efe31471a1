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


def output(command: str, after: str | None = None) -> str:
    """What the tutorial prints after `$ ./<command>` (the first time at or after the line
    `after`), up to the next prompt or blank line."""
    text = lines()
    start = text.index(f"$ ./{command}", text.index(after) if after else 0)
    block = []
    for line in text[start + 1:]:
        if not line.strip() or line.startswith("$ "):
            break
        block.append(line)
    return "\n".join(block)
