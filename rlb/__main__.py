"""`python -m rlb` is the `rlb` command."""
import sys

from rlb.cli import main

sys.exit(main())
