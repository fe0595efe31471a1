"""A third-party forwarding mode as a package would ship it: a module and its
dist-info with an `rlb` entry point, written into a folder for PYTHONPATH. It reuses
NAT's checks and C under its own name, flags and display: what it tests is the
registry's plumbing, from the entry point to the grammar and the workers."""
from __future__ import annotations

from pathlib import Path

NAME, FLAG, LONG_FLAG, DISPLAY = "toy", "-X", "--toy", "Toy"
HELP = "Toy forwarding (a plugin's mode)"

MODULE = '''
"""rlb toy mode: NAT's C under another name."""
import dataclasses

from rlb.modes import provides
from rlb.modes.nat import NAT

TOY = dataclasses.replace(NAT, name={name!r}, flag={flag!r}, long_flag={long_flag!r},
                          display={display!r}, help={help!r})
rlb_forwarding_modes = provides(TOY)
'''


def install(folder: Path, flag: str = FLAG, long_flag: str = LONG_FLAG) -> Path:
    """Write rlb_toy_mode.py and rlb_toy_mode-0.dist-info into folder; return folder."""
    (folder / "rlb_toy_mode.py").write_text(MODULE.format(
        name=NAME, flag=flag, long_flag=long_flag, display=DISPLAY, help=HELP))
    dist = folder / "rlb_toy_mode-0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: rlb-toy-mode\nVersion: 0\n")
    (dist / "entry_points.txt").write_text("[rlb]\ntoy = rlb_toy_mode\n")
    return folder
