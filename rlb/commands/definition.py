"""A command's definition string compiled into its tree of keywords, variables, groups."""

from __future__ import annotations

import keyword as _pykeyword
import re
from dataclasses import dataclass
from typing import Any

from rlb.commands.values import _DIGITS, _TYPES

# Rank of one matched token; the lowest tuple of ranks over the line wins
# (FRR's match precedence): keyword exact > keyword prefix > typed > WORD/LINE.
EXACT, PREFIX, TYPED, GENERIC = 0, 1, 2, 3

# Lowercase words; after a leading dash any case, for ipvsadm-style options (-A, -L).
_KEYWORD = re.compile(r"[a-z0-9_.-]+|-[A-Za-z0-9_.-]+")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DEF_TOKEN = re.compile(
    r"(?P<range>\((?P<lo>[0-9]+)-(?P<hi>[0-9]+)\))|(?P<punct>[\[\](){}|])|(?P<word>[^\s\[\](){}|$]+)")
_BIND = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_CLOSER = {"[": "]", "(": ")", "{": "}"}


class GrammarError(Exception):
    """A definition or declaration is wrong: a programming error, raised when installed."""


# -- definition tree; nodes compare by identity, so continuations hash cheaply --

@dataclass(frozen=True, eq=False)
class _Kw:
    word: str
    bind: str | None = None
    value: Any = True        # True, or the word itself when bound by (a|b)$name


@dataclass(frozen=True, eq=False)
class _Var:
    kind: str                # a _TYPES key or "RANGE"
    bind: str | None
    help: str = ""
    lo: int = 0
    hi: int = 0

    @property
    def display(self):
        return f"({self.lo}-{self.hi})" if self.kind == "RANGE" else self.kind

    @property
    def rank(self):
        return GENERIC if self.kind in ("WORD", "LINE") else TYPED

    def convert(self, text):
        if self.kind != "RANGE":
            return _TYPES[self.kind][0](text)
        return int(text) if _DIGITS.fullmatch(text) and self.lo <= int(text) <= self.hi else None

    def could_start(self, partial):
        """True when `partial` may still grow into a value of this type."""
        if self.kind != "RANGE":
            return re.fullmatch(_TYPES[self.kind][1], partial) is not None
        if not partial or not _DIGITS.fullmatch(partial):
            return not partial
        p = int(partial)     # some count of appended digits must land in [lo, hi]
        return any(p * 10**k <= self.hi and (p + 1) * 10**k - 1 >= self.lo
                   for k in range(len(str(self.hi)) - len(partial) + 1))


@dataclass(frozen=True, eq=False)
class _Group:
    kind: str                # "seq" | "opt" (one item) | "alt" | "set"
    items: tuple


# A continuation is a cons list of frames: ((_SEQ, seq, next index) or
# (_SET, set, used indexes), rest), () at the end of the command.
_SEQ, _SET = "seq", "set"
# After a LINE a path stays in the continuation (_IN_LINE, that LINE): each
# further token joins the value the LINE bound from its first token on.
_IN_LINE = "in-line"


def _is_line(term):
    return isinstance(term, _Var) and term.kind == "LINE"


def _terminals(node):
    if isinstance(node, _Group):
        for c in node.items:
            yield from _terminals(c)
    else:
        yield node


# -- definition parser ------------------------------------------------------------

class _DefParser:
    """Recursive descent over a definition string, straight into the tree."""

    def __init__(self, definition, var_help):
        self.definition, self.var_help = definition, var_help
        # Explicit $names are known before the walk so that an implicit keyword
        # name can yield to them (`dev WORD$dev` binds dev to the WORD).
        self.explicit = set(_BIND.findall(definition))
        self.var_names = set()
        self.toks, self.close, self.i = [], {}, 0
        stack, pos = [], 0
        while pos < len(definition):
            if definition[pos].isspace():
                pos += 1
                continue
            m = _DEF_TOKEN.match(definition, pos)
            if not m:
                self.fail(f"unexpected {definition[pos]!r} at offset {pos}")
            b = _BIND.match(definition, m.end())
            p = m.group("punct")
            if p in _CLOSER:
                stack.append(len(self.toks))
            elif p and p != "|":
                if not stack or _CLOSER[self.toks[stack[-1]][0].group("punct")] != p:
                    self.fail(f"unbalanced {p!r}")
                self.close[stack.pop()] = len(self.toks)
            self.toks.append((m, b.group(1) if b else None))
            pos = (b or m).end()
        if stack:
            self.fail("unclosed bracket")

    def fail(self, why):
        raise GrammarError(f"bad definition {self.definition!r}: {why}")

    def parse(self):
        if not self.toks:
            self.fail("empty")
        root = _Group("seq", tuple(self.alternatives(True)[0]))
        self.names(root)
        self.line_last(root, True)
        for key, text in self.var_help.items():
            if key not in self.var_names:
                self.fail(f"help for ${key}, which is not a variable of this command")
            if not isinstance(text, str) or not text.strip():
                self.fail(f"empty help for ${key}")
        return root, tuple(dict.fromkeys(t.bind for t in _terminals(root) if t.bind))

    def alternatives(self, top):
        """Elements up to the closer of the current group, split at '|'."""
        alts = [[]]
        while self.i < len(self.toks):
            p = self.toks[self.i][0].group("punct")
            if p in ("]", ")", "}"):
                break
            if p == "|":
                if top:
                    self.fail("'|' outside a group")
                alts.append([])
                self.i += 1
            else:
                alts[-1].append(self.element(top))
        if not all(alts):
            self.fail("empty alternative")
        return alts

    def element(self, mandatory):
        m, bind = self.toks[self.i]
        p = m.group("punct")
        if p:
            end = self.close[self.i]
            group_bind = self.toks[end][1]
            if bind or (group_bind and p != "("):
                self.fail(f"'${bind or group_bind}' may only follow a word or (a|b)")
            if group_bind:
                return self.keyword_choice(self.toks[self.i + 1:end], group_bind, end)
            self.i += 1
            alts = [_Group("seq", tuple(a)) for a in self.alternatives(False)]
            self.i += 1
            if p != "[":
                return _Group("set" if p == "{" else "alt", tuple(alts))
            return _Group("opt", (alts[0] if len(alts) == 1 else _Group("alt", tuple(alts)),))
        self.i += 1
        if m.group("range"):
            lo, hi = int(m.group("lo")), int(m.group("hi"))
            if lo > hi:
                self.fail(f"empty range ({lo}-{hi})")
            return self.var("RANGE", bind, lo, hi, f"Number from {lo} to {hi}")
        word = m.group("word")
        if word in _TYPES:
            return self.var(word, bind, 0, 0, _TYPES[word][2])
        if not _KEYWORD.fullmatch(word):
            self.fail(f"unknown type {word!r}" if any(c.isupper() for c in word)
                      else f"invalid keyword {word!r}")
        if bind:
            return _Kw(word, self.name(bind))
        name = word.lstrip("-").replace("-", "_").replace(".", "_")
        # A keyword on every path tells the handler nothing; one spelled like
        # an explicit binding yields to it.
        if mandatory or name in self.explicit:
            return _Kw(word)
        if not _NAME.fullmatch(name) or _pykeyword.iskeyword(name):
            self.fail(f"keyword {word!r} gives no usable name; add $name")
        return _Kw(word, name)

    def keyword_choice(self, inner, bind, end):
        """(a|b|c)$name: the chosen keyword's text is the value."""
        words = [m.group("word") for m, b in inner[0::2] if not b]
        if (len(inner) % 2 == 0 or any(m.group("punct") != "|" for m, _ in inner[1::2])
                or len(words) != len(inner[0::2])
                or not all(w and w not in _TYPES and _KEYWORD.fullmatch(w) for w in words)):
            self.fail(f"(...)${bind} may only hold plain keywords")
        self.i = end + 1
        return _Group("alt", tuple(_Kw(w, self.name(bind), w) for w in words))

    def var(self, kind, bind, lo, hi, default):
        if not bind:
            self.fail(f"variable {_Var(kind, None, '', lo, hi).display} needs a $name")
        self.var_names.add(self.name(bind))
        return _Var(kind, bind, self.var_help.get(bind, default), lo, hi)

    def name(self, bind):
        if _pykeyword.iskeyword(bind):
            self.fail(f"${bind} is a Python keyword")
        return bind

    def names(self, node):
        """Binding names of a subtree; one may repeat only across alternatives of a group."""
        if not isinstance(node, _Group):
            return {node.bind} if node.bind else set()
        seen = set()
        for part in map(self.names, node.items):
            if node.kind != "alt" and seen & part:
                self.fail(f"duplicate binding ${min(seen & part)}")
            seen |= part
        return seen

    def line_last(self, node, last):
        """LINE takes the rest of the line, so nothing may be able to follow it."""
        if _is_line(node) and not last:
            self.fail("LINE must be last")
        if isinstance(node, _Group):
            for i, c in enumerate(node.items):
                # in a {set} another element may always follow
                self.line_last(c, last and node.kind != "set"
                               and (node.kind != "seq" or i == len(node.items) - 1))

