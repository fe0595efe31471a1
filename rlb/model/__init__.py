"""The authoritative state of an instance and its validation, in pure Python."""
