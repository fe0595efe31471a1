"""The command grammar: each command is one definition string, matched, explained and completed from it."""

# The idea is FRR's DEFPY (lib/command_graph.c, lib/command_match.c): the
# definition string *is* the grammar and keyword help lives in one table.
# Matching runs every command of a node in lockstep, token by token, so that
# "the keywords allowed at this position" is known when an abbreviation is
# judged, and so that an error points at the first token no command accepts.

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rlb.commands.definition import (_IN_LINE, _KEYWORD, _SEQ, _SET, EXACT, GENERIC, PREFIX,
                                     GrammarError, _DefParser, _Group, _is_line, _Kw,
                                     _terminals, _Var)

MAX_LINE = 4096
CR = ("<cr>", "Execute command")

_WS = " \t\r\n\f\v"
# C0 controls other than whitespace, DEL, C1 controls and lone surrogates are never
# valid, and echoing them back in an error would let a line drive the terminal.
_BAD_CHAR = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_TOKEN = re.compile(r'"((?:\\.|[^"\\])*\\?)("?)|[^ \t\r\n\f\v]+')
_UNESCAPE = re.compile(r'\\(["\\])')


class ParseError(ValueError):
    """A line matches no command; `kind`, `position` and `expected` say why."""

    def __init__(self, message: str, *, kind: str, position: int, expected=(), line: str = ""):
        super().__init__(message)
        self.kind = kind          # "invalid" | "incomplete" | "ambiguous" | "unknown"
        self.position = position  # character offset of the offending token in the line
        self.expected = list(expected)
        self.line = line


class Node(NamedTuple):
    name: str
    parent: str | None
    prompt: str


@dataclass(eq=False)
class Command:
    definition: str
    node: str
    handler: Callable
    help: dict               # variable help by binding name, as given
    bindings: tuple          # every key of Match.args, in definition order
    doc: str = ""            # first line of the handler's docstring
    root: Any = field(default=None, repr=False)
    start: Any = field(default=None, repr=False)
    first: Any = field(default=None, repr=False)
    # Changes nothing (a show): a `view` user may run it, and so may the shell's exec
    # modes. The default is False so that a command nobody marked stays refused.
    readonly: bool = False
    # Changes running state, not configuration (flush a table, zero counters): it acts
    # on the running instance even in configuration mode, and is no configuration change.
    operational: bool = False
    # How the state this command configures prints (the running configuration):
    # show(model, section) yields the bindings of each line, as dicts or Shown
    # (rlb.commands.printing); the line's text is the definition filled in with them.
    show: Callable | None = None
    # The node the command enters (a section's head: `interface`): its commands' lines
    # print under it.
    opens: str | None = None
    # What of a line names its object (printing.name_of): None, all of it; else its
    # bindings that do, each mapped to None or to what of its value counts.
    key: dict | None = None
    # Its first line in a section means something (a port's first address is its ARP
    # source, Model._primary): the configuration's canonical form keeps it
    # (rlb.commands.running).
    primary: bool = False


@dataclass(eq=False)
class Match:
    command: Command
    args: dict



class _Tok(NamedTuple):
    text: str
    start: int
    end: int
    quoted: bool
    open: bool = False       # an unterminated quote (completion only)


def _tokenize(line: str, lenient: bool = False) -> list[_Tok]:
    """Split at whitespace; "double quoted" text is one token and never a keyword."""
    toks = []
    for m in _TOKEN.finditer(line):
        if m.group(1) is None:
            toks.append(_Tok(m.group(), m.start(), m.end(), False))
            continue
        is_open = not m.group(2)
        if is_open and not lenient:
            raise _error(line, m.start(), "invalid", "Unterminated quoted string.")
        if m.end() < len(line) and line[m.end()] not in _WS:
            raise _error(line, m.end(), "invalid", "Text after closing quote.")
        toks.append(_Tok(_UNESCAPE.sub(r"\1", m.group(1)), m.start(), m.end(), True, is_open))
    return toks


def _error(line, position, kind, detail="", expected=(), head=None):
    """A ParseError rendered like a router: the line echoed, a caret under the token."""
    head = head or ("% Unknown command." if kind == "unknown" else
                    "% Invalid input detected at '^' marker.")
    echo = line.rstrip("\r\n").translate(str.maketrans("\t\f\v\r\n", "     "))
    return ParseError(f"{head}{' ' + detail if detail else ''}\n{echo}\n{' ' * position}^",
                      kind=kind, position=position, expected=expected, line=line)



def _same_kind(x, y):
    """Could one token match terminals x and y with the same rank, so neither wins?"""
    if isinstance(x, _Kw) or isinstance(y, _Kw):
        return isinstance(x, _Kw) and isinstance(y, _Kw) and x.word == y.word
    if x.rank == GENERIC and y.rank == GENERIC:
        return True
    return x.kind == y.kind and (x.kind != "RANGE" or (x.lo <= y.hi and y.lo <= x.hi))


# -- the grammar ------------------------------------------------------------------

class Grammar:
    """Nodes, keyword help, commands and completers; parse() and complete() use them all."""

    def __init__(self):
        self.nodes: dict[str, Node] = {}
        self._words: dict[str, str] = {}
        self._commands: dict[str, list[Command]] = {}
        self._completers: dict[str, Callable] = {}
        self._cache: dict = {}

    # -- declaration --

    def node(self, name: str, parent: str | None = None, prompt: str = "") -> Node:
        if name in self.nodes:
            raise GrammarError(f"node {name!r} declared twice")
        if parent is not None and parent not in self.nodes:
            raise GrammarError(f"node {name!r}: parent node {parent!r} does not exist")
        self.nodes[name] = Node(name, parent, prompt)
        self._commands[name] = []
        return self.nodes[name]

    def words(self, mapping: dict | None = None, /, **helps: str) -> None:
        """Keyword help, the one place each word is described; a dict admits words like '-s'."""
        for word, text in {**(mapping or {}), **helps}.items():
            if not isinstance(word, str) or not _KEYWORD.fullmatch(word):
                raise GrammarError(f"bad keyword {word!r}")
            if not isinstance(text, str) or not text.strip():
                raise GrammarError(f"keyword {word!r}: empty help")
            if self._words.get(word, text) != text:
                raise GrammarError(f"keyword {word!r} already described as {self._words[word]!r}")
            self._words[word] = text

    def completer(self, name: str, fn: Callable) -> None:
        """Offer fn(ctx) -> list of str, or of (str, help), as values for every variable
        bound to `name`."""
        if self._completers.get(name, fn) is not fn:
            raise GrammarError(f"completer for ${name} registered twice")
        self._completers[name] = fn

    def command(self, definition: str, node: str, help: dict | None = None,
                readonly: bool = False, operational: bool = False,
                show: Callable | None = None, opens: str | None = None,
                key: tuple | dict | None = None, primary: bool = False):
        """Decorator installing a command; the function is returned unchanged.
        readonly=True: the command changes no state (see Command.readonly);
        operational=True: it changes state but not configuration (Command.operational);
        show, opens, key, primary: how its state prints (Command.show and after)."""
        if key is not None and not isinstance(key, dict):
            key = dict.fromkeys(key)
        def install(handler):
            self._install(definition, node, dict(help or {}), handler, readonly, operational,
                          dict(show=show, opens=opens, key=key, primary=primary))
            return handler
        return install

    def ancestors(self, node: str) -> list[str]:
        """The node and its parents, nearest first: where a line unknown in a node is
        looked for next (as in vtysh)."""
        chain = []
        while node is not None:
            chain.append(node)
            node = self.nodes[node].parent
        return chain

    def commands(self, node: str) -> list[Command]:
        return list(self._node_commands(node))

    def check(self) -> None:
        """Self-check of the whole grammar; raises GrammarError on the first problem."""
        for n in self.nodes.values():
            if n.parent is not None and n.parent not in self.nodes:
                raise GrammarError(f"node {n.name!r}: parent {n.parent!r} does not exist")
        bound = set()
        for cmds in self._commands.values():
            for i, cmd in enumerate(cmds):
                self._check_words(cmd.definition, cmd.root)
                for other in cmds[:i]:
                    self._check_conflict(cmd, other)
                bound.update(cmd.bindings)
        unused = sorted(set(self._completers) - bound)
        if unused:
            raise GrammarError(f"completer for ${unused[0]} matches no binding of any command")

    def _install(self, definition, node, var_help, handler, readonly=False, operational=False,
                 printing=None):
        existing = self._node_commands(node)
        root, bindings = _DefParser(definition, var_help).parse()
        self._check_words(definition, root)
        start = ((_SEQ, root, 0), ())
        trans = self._expand(start)[0]
        first = (frozenset(t.word for t, _ in trans if isinstance(t, _Kw)),
                 any(isinstance(t, _Var) for t, _ in trans))
        doc = (getattr(handler, "__doc__", None) or "").strip().partition("\n")[0]
        cmd = Command(definition, node, handler, var_help, bindings, doc, root, start, first,
                      readonly=bool(readonly), operational=bool(operational),
                      **(printing or {}))
        if cmd.opens is not None and cmd.opens not in self.nodes:
            raise GrammarError(f"{definition!r} opens unknown node {cmd.opens!r}")
        if set(cmd.key or ()) - set(bindings):
            raise GrammarError(f"{definition!r}: key names no binding of it")
        for other in existing:
            self._check_conflict(cmd, other)
        existing.append(cmd)

    def _node_commands(self, node):
        try:
            return self._commands[node]
        except (KeyError, TypeError):
            raise GrammarError(f"unknown node {node!r}") from None

    def _check_words(self, definition, root):
        missing = sorted({t.word for t in _terminals(root)
                          if isinstance(t, _Kw) and t.word not in self._words})
        if missing:
            raise GrammarError(f"{definition!r}: no help for keyword(s) {', '.join(missing)};"
                               " describe them with Grammar.words()")

    def _check_conflict(self, a, b):
        """Refuse a and b when some line would match both with the same ranks; FRR
        only finds that out when such a line is typed."""
        if a.definition.split() == b.definition.split():
            raise GrammarError(f"duplicate command {a.definition!r} in node {a.node!r}")
        if not (a.first[0] & b.first[0] or (a.first[1] and b.first[1])):
            return
        # Breadth-first over pairs of continuations, stepping both on tokens
        # of the same kind; reaching a pair where both may end is a conflict.
        start = (a.start, b.start)
        parent = {start: None}
        queue = deque([start])
        while queue:
            state = queue.popleft()
            (ta, ea), (tb, eb) = self._expand(state[0]), self._expand(state[1])
            if ea and eb and state != start:
                words = []
                while parent[state]:
                    state, term = parent[state]
                    words.append(term.word if isinstance(term, _Kw) else term.display)
                raise GrammarError(f"command {a.definition!r} in node {a.node!r} is ambiguous with "
                                   f"{b.definition!r}: both accept {' '.join(reversed(words))!r}")
            for x, ra in ta:
                for y, rb in tb:
                    if _same_kind(x, y) and (ra, rb) not in parent:
                        parent[(ra, rb)] = (state, x)
                        queue.append((ra, rb))

    # -- continuations: what may come next, computed once per position --

    def _expand(self, cont):
        """-> (((terminal, continuation after it), ...), may the line end here)."""
        hit = self._cache.get(cont)
        if hit is None and cont and cont[0] == _IN_LINE:
            hit = self._cache[cont] = (((_Var("LINE", None, cont[1].help), cont),), True)
        elif hit is None:
            out = {}
            end = self._walk(cont, out)
            hit = self._cache[cont] = (tuple(out), end)
        return hit

    def _walk(self, cont, out):
        if not cont:
            return True
        (tag, group, state), rest = cont
        if tag is _SEQ:
            nxt = ((_SEQ, group, state + 1), rest) if state + 1 < len(group.items) else rest
            return self._walk_node(group.items[state], nxt, out)
        end = self._walk(rest, out)          # a {set} may stop after any element
        for j, item in enumerate(group.items):
            if j not in state:
                end |= self._walk_node(item, ((_SET, group, state | {j}), rest), out)
        return end

    def _walk_node(self, node, rest, out):
        if not isinstance(node, _Group):
            out[(node, (_IN_LINE, node) if _is_line(node) else rest)] = None
            return False
        if node.kind == "seq":
            return self._walk(((_SEQ, node, 0), rest), out)
        if node.kind == "set":
            return self._walk(((_SET, node, frozenset()), rest), out)
        end = node.kind == "opt" and self._walk(rest, out)
        for item in node.items:
            end |= self._walk_node(item, rest, out)
        return end

    # -- matching --

    def _step(self, paths, tok, line):
        """Advance all paths over one token -> (live paths, ambiguous keyword prefixes)."""
        moves, words = [], set()
        for path in paths:
            for term, rest in self._expand(path[1])[0]:
                moves.append((path, term, rest))
                if isinstance(term, _Kw):
                    words.add(term.word)
        kw, krank = None, EXACT
        if not tok.quoted and words:
            if tok.text in words:
                kw = tok.text     # an exact match hides the longer keywords it prefixes
            else:
                pref = sorted(w for w in words if w.startswith(tok.text))
                if len(pref) > 1:
                    return [], pref
                if pref:
                    kw, krank = pref[0], PREFIX
        live = {}
        for (cmd, _, binds, ranks), term, rest in moves:
            if isinstance(term, _Kw):
                if term.word != kw:
                    continue
                rank, value = krank, term.value
            else:
                rank = term.rank
                value = line[tok.start:].rstrip(_WS) if _is_line(term) else term.convert(tok.text)
                if value is None:
                    continue
            if term.bind:
                binds = binds + ((term.bind, value),)
            key = (cmd, rest, binds)
            ranks = ranks + (rank,)
            if key not in live or ranks < live[key]:
                live[key] = ranks
        return [(c, r, b, rk) for (c, r, b), rk in live.items()], ()

    @staticmethod
    def _clean(line):
        """-> (line as str, True for an empty or comment line); ParseError for what
        no command could mean. A comment may be long: it is skipped anyway."""
        if isinstance(line, (bytes, bytearray)):
            try:
                line = bytes(line).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ParseError("% Invalid input: the line is not UTF-8 text.",
                                 kind="invalid", position=e.start) from None
        if not isinstance(line, str):
            raise TypeError(f"a command line is str, not {type(line).__name__}")
        if line.lstrip(_WS)[:1] in ("", "!", "#"):
            return line, True
        if len(line) > MAX_LINE:
            raise ParseError(f"% Line too long ({len(line)} characters, limit {MAX_LINE}).",
                             kind="invalid", position=MAX_LINE, line=line)
        bad = _BAD_CHAR.search(line)
        if bad:
            raise ParseError(f"% Invalid character U+{ord(bad.group()):04X} at offset {bad.start()}.",
                             kind="invalid", position=bad.start(), line=line)
        return line, False

    def parse(self, line: str, node: str) -> Match | None:
        """The best match for a line; None for an empty or comment line; else ParseError."""
        paths = [(c, c.start, (), ()) for c in self._node_commands(node)]
        line, skip = self._clean(line)
        if skip:
            return None
        toks = _tokenize(line)
        for i, tok in enumerate(toks):
            live, amb = self._step(paths, tok, line)
            if amb:
                raise ParseError(f'% Ambiguous command: "{tok.text}"', kind="ambiguous",
                                 position=tok.start, line=line,
                                 expected=[(w, self._words[w]) for w in amb])
            if not live:
                head = self._out_of_range(paths, tok, toks[i - 1].text if i else "")
                raise _error(line, tok.start, "unknown" if i == 0 else "invalid",
                             expected=self._candidates(paths), head=head)
            paths = live
        done = [p for p in paths if self._expand(p[1])[1]]
        if not done:
            exp = self._candidates(paths)
            width = max(len(t) for t, _ in exp)
            raise ParseError("% Incomplete command." + "".join(f"\n  {t:<{width}}  {h}" for t, h in exp),
                             kind="incomplete", position=len(line), expected=exp, line=line)
        best = min(p[3] for p in done)
        winners = {(c, frozenset(b)): (c, b) for c, _, b, r in done if r == best}
        if len(winners) > 1:
            cmds = list(dict.fromkeys(c for c, _ in winners.values()))
            raise ParseError(f'% Ambiguous command: "{line.strip(_WS)}"', kind="ambiguous",
                             position=toks[0].start, line=line,
                             expected=[(c.definition, c.doc) for c in cmds])
        cmd, binds = next(iter(winners.values()))
        args = dict.fromkeys(cmd.bindings)
        args.update(binds)
        return Match(cmd, args)

    def _out_of_range(self, paths, tok, before):
        """`% NAME must be LO-HI` for a number outside the range a command takes there
        (NAME: the binding, or the word before when the binding is a mere letter)."""
        if tok.quoted or not re.fullmatch("[0-9]+", tok.text):
            return None
        for path in paths:
            for term, _ in self._expand(path[1])[0]:
                if isinstance(term, _Var) and term.kind == "RANGE":
                    name = term.bind if len(term.bind) > 1 or not before else before
                    return f"% {name.replace('_', '-')} must be {term.lo}-{term.hi}"
        return None

    # -- help and completion --

    def _candidates(self, paths, prefix="", quoted=False, fresh=True, values=None):
        out, end = set(), False
        for path in paths:
            trans, e = self._expand(path[1])
            end |= e
            for term, _ in trans:
                if isinstance(term, _Kw):
                    if not quoted and term.word.startswith(prefix):
                        out.add((term.word, self._words[term.word]))
                    continue
                if term.could_start(prefix):
                    out.add((term.display, term.help))
                if values is not None and term.bind in self._completers:
                    out.update((v, h or term.help) for v, h in values(term.bind)
                               if v.startswith(prefix) and term.convert(v) is not None)
        if end and fresh:
            out.add(CR)
        return sorted(out, key=lambda c: (c == CR, c))

    def complete(self, line: str, node: str, ctx: Any = None) -> list[tuple[str, str]]:
        """(token, help) pairs that may come next, sorted, <cr> last; a partial last
        word keeps only the candidates it could start (and never offers <cr>)."""
        paths = [(c, c.start, (), ()) for c in self._node_commands(node)]
        try:
            line, skip = self._clean(line)
            toks = _tokenize(line, lenient=True)
        except ParseError:
            return []
        if skip and line.strip(_WS):
            return []     # a comment
        last = toks.pop() if toks and (toks[-1].open or toks[-1].end == len(line)) else None
        for tok in toks:
            paths, _ = self._step(paths, tok, line)
            if not paths:
                return []
        cache = {}

        def values(name):
            # A completer asks the running system; when it fails, typing goes on
            # without its suggestions rather than breaking the shell. A value may come
            # with its own help, as (value, help): a choice explains itself under `?`.
            if name not in cache:
                try:
                    cache[name] = [(v, "") if isinstance(v, str) else (v[0], v[1])
                                   for v in self._completers[name](ctx) if isinstance(v, str)
                                   or (isinstance(v, tuple) and len(v) == 2
                                       and all(isinstance(x, str) for x in v))]
                except Exception:  # noqa: BLE001
                    cache[name] = []
            return cache[name]

        return self._candidates(paths, last.text if last else "", bool(last and last.quoted),
                                last is None, values)
