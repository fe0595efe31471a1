"""`python -m rlb.lab ...`: the lab's command line without the top-level `rlb`."""

import sys

from rlb.lab.cli import main

sys.exit(main(sys.argv[1:]))
