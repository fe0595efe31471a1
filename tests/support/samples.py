"""Lines built from a command's own definition (rlb/commands/grammar.py's tree), for tests
that run every command."""
from rlb.commands.definition import _Group, _Kw, _terminals, _Var


def sample_line(node, full, samples, words, exclude=frozenset()):
    """The words of a line of the definition: every optional part (full) or none; a
    value of each type from `samples`, of each WORD binding from `words`; a {set}'s items
    that bind a name in `exclude` are left out."""
    def walk(n):
        if isinstance(n, _Kw):
            return [n.word]
        if isinstance(n, _Var):
            if n.kind == "RANGE":
                return [str(n.lo)]
            return [words[n.bind] if n.kind == "WORD" else samples[n.kind]]
        assert isinstance(n, _Group)
        if n.kind == "opt":
            return walk(n.items[0]) if full else []
        if n.kind == "alt":
            return walk(n.items[0])
        items = n.items
        if n.kind == "set":
            if not full:
                return []
            items = [i for i in items if not {t.bind for t in _terminals(i)} & exclude]
        return [w for item in items for w in walk(item)]
    return walk(node)
