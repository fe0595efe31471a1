"""Shared fixtures: tests import helpers from tests/support."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
