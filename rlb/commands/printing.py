"""How a command's state prints: its definition filled in (the running configuration).

A configuration command declares `show=` (rlb.commands.grammar.Command.show): a function
of the model (and of the section being printed) that gives the bindings of each of its
lines, as dicts or Shown. unparse() makes the line from the definition itself, so the
words are written once, in the grammar (unparse_each() a section's many lines); name_of() is what names the line's object for
the 3-way merge; lead() the keywords every line of a command starts with.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from rlb.commands.definition import GrammarError, _Group, _Kw, _terminals, _Var
from rlb.commands.grammar import Command


class Shown(NamedTuple):
    """One line a command's `show` gives: its bindings; for a section's head, the section
    its lines show (Command.opens); for a stanza, where it goes among the others."""
    args: dict
    section: Any = None
    rank: tuple = ()
    bare: bool = False       # a section's head printed even with no lines under it


# Grammar walks, once per command and per shape of its bindings (_form): by command,
# its keyword-choice bindings ((a|b)$name) and the forms of its shapes seen so far.
_FORMS: dict = {}


class _Form(NamedTuple):
    """One shape of a command's lines: what unparse() fills in with one call, and the
    tokens (text or None for a value, binding, True for a value) name_of() reads."""
    text: str
    tokens: tuple


def unparse(cmd: Command, args: dict) -> str:
    """The line that parses back to `args`: the command's definition with its
    variables filled in, the optional parts whose bindings are given (in the order
    of the definition), the alternative that takes them. A binding the definition
    cannot show is a GrammarError (the show declaration is wrong)."""
    # `{server!s}` is str(value), as the tokens' join would give: one C call a line
    return _form(cmd, args).text.format_map(args)


def lead(cmd: Command) -> list[str]:
    """The keywords every line of the command starts with (`ip address`)."""
    words = []
    for item in cmd.root.items:
        if not isinstance(item, _Kw) or item.bind is not None:
            break
        words.append(item.word)
    return words


def name_of(cmd: Command, args: dict) -> str:
    """What names the object a line is (the 3-way merge's key): the whole line, or,
    for a command with a `key`, the line up to the first value that is not one of
    the key's bindings, without the keyword that only labels that value (`via`)."""
    if cmd.key is None:
        return unparse(cmd, args)
    args = {k: (cmd.key[k](v) if callable(cmd.key.get(k)) and v is not None else v)
            for k, v in args.items()}
    out = []
    for text, bind, _ in _form(cmd, args).tokens:
        text = str(args[bind]) if text is None else text
        if bind is not None and bind not in cmd.key:
            if out and out[-1] == (bind.replace("_", "-"), None):
                out.pop()
            break
        out.append((text, bind))
    return " ".join(text for text, _ in out)


def unparse_each(cmd: Command, lines) -> list[str]:
    """unparse() of each of a command's lines (bindings or Shown): a section's thousands
    of lines in one loop, each one shape looked up and one format_map."""
    choices, forms = _forms(cmd)
    out = []
    for args in lines:
        if isinstance(args, Shown):
            args = args.args
        form = forms.get(_shape(args, choices)) or _form(cmd, args)
        out.append(form.text.format_map(args))
    return out


def _forms(cmd) -> tuple:
    """A command's keyword-choice bindings ((a|b)$name) and its forms by shape."""
    entry = _FORMS.get(cmd)
    if entry is None:
        entry = _FORMS[cmd] = (tuple(t.bind for t in _terminals(cmd.root)
                                     if isinstance(t, _Kw) and t.value is not True), {})
    return entry


def _shape(args, choices) -> tuple:
    # Which parts print depends only on which bindings are given (and the word of a
    # keyword choice): one walk of the definition per such shape, then only values
    # are filled in (a running configuration has thousands of lines of a few shapes).
    # The shape is the binding names, then for each value None (not given), True
    # (given, false) or False (given, true), then the choices' words: flat, as a
    # tuple of tuples costs a line as much again (its length tells the parts apart).
    return (*args, *[None if v is None else not v for v in args.values()],
            *map(args.get, choices))


def _form(cmd, args) -> _Form:
    choices, forms = _forms(cmd)
    shape = _shape(args, choices)
    form = forms.get(shape)
    if form is None:
        used: set = set()
        r = _fill(cmd.root, args, used)
        left = {k for k, v in args.items() if v not in (None, False)} - used
        if r is None or left:
            raise GrammarError(f"{cmd.definition!r} cannot print {args!r}")
        tokens = tuple(r[0])
        text = " ".join("{%s!s}" % bind if text is None
                        else text.replace("{", "{{").replace("}", "}}")
                        for text, bind, _ in tokens)
        form = forms[shape] = _Form(text, tokens)
    return form


def _fill(node, args, used):
    """(tokens, how many given bindings they show) of a definition subtree, or None when
    `args` cannot make it: unparse(). A token is (text, its binding or None, True
    for a value); a variable's text is None, its value's text is filled in after. A
    keyword bound by its own name (`[sapool]`, `[no]`) prints when given true, or as the
    lead of a part whose values are given."""
    if isinstance(node, _Var):
        if args.get(node.bind) is None:
            return None
        used.add(node.bind)
        return [(None, node.bind, True)], 1
    if isinstance(node, _Kw):
        if node.bind is None:
            return [(node.word, None, False)], 0
        value = args.get(node.bind)
        if node.value is not True:          # (a|b)$name: the word that is the value
            if value != node.value:
                return None
            used.add(node.bind)
            return [(node.word, node.bind, True)], 1
        if not value:
            return ([(node.word, None, False)], 0) if node.bind not in args else None
        used.add(node.bind)
        return [(node.word, node.bind, False)], 1
    if node.kind == "seq":
        tokens, score = [], 0
        for item in node.items:
            r = _fill(item, args, used)
            if r is None:
                return None
            tokens += r[0]
            score += r[1]
        return tokens, score
    if node.kind == "opt":
        mine: set = set()
        r = _fill(node.items[0], args, mine)
        if r is None or not r[1]:
            return [], 0
        used |= mine
        return r
    if node.kind == "alt":
        for item in node.items:
            mine = set()
            r = _fill(item, args, mine)
            if r is not None and r[1]:
                used |= mine
                return r
        return None
    tokens, score = [], 0                   # a set: its given elements, in definition order
    for item in node.items:
        r = _fill(_Group("opt", (item,)), args, used)
        tokens += r[0]
        score += r[1]
    return tokens, score
