"""The command vocabulary: grammar, declarations, handlers; used by rlb.control and the shell."""
