"""The errors every layer raises for an operator's mistake: a leaf that imports nothing.

Modes, schedulers, the model and the command handlers all refuse bad input with a
CommandError; keeping it here lets each of them use it without importing a layer
above its own. A ConfigError (FILE:LINE: reason) is raised by the configuration
machinery (rlb.control) and caught by configuration-mode handlers (rlb.commands).
"""


class CommandError(Exception):
    """A command that cannot be applied; the text is for the operator."""


class ConfigError(Exception):
    """A line of a file or batch that cannot be applied: FILE:LINE: reason."""
