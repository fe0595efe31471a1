"""Command words are written once: a string literal equal to a grammar keyword, anywhere
in rlb, is a second spelling of a command word unless it is one of the forms below."""
from __future__ import annotations

import ast
from pathlib import Path

from rlb import plugins
from rlb.commands.base import g

ROOT = Path(__file__).resolve().parents[2]

# Where a literal is not a command word, by form (each checked by test_the_scan_*):
# - declarations: the keys of Grammar.words(...), the definition a command (or a
#   helper named *command) is installed with, a node's name, a completer's binding, a
#   command's key= bindings;
# - names: a dict's keys, a subscript, the key of .get/.pop/.setdefault, the attribute
#   of getattr/hasattr/setattr (bindings, fields, JSON keys);
# - constants: the value of a module-level UPPERCASE name, the one place that names it
#   (SCOPES, NUMBERS, the ipvsadm option table, CTRL_Z);
# - a Mode's own ipvsadm flags (mode_flags: the registry's data, not grammar).
# A module that speaks other programs' languages, and why (the handful of exceptions):
EXCEPTIONS = {
    "rlb/lab/": "iproute2, nginx and curl argv; and config text in rlb's own language, "
                "which test_lab_config_passes_check and test_demo_command_lines_run run "
                "through the grammar",
    "rlb/cli.py": "rlb's own argv (rlb -c LINE, rlb ipvsadm ARGS)",
    "rlb/daemon.py": "the EAL's argv (-m MiB)",
    "rlb/commands/ipvsadm.py": "ipvsadm's own texts: its list formats (--stats, --rate) and "
                               "messages naming its long options, `-R` lines that start "
                               "with ipvsadm",
    "rlb/plugins.py": "the kind of plugin its duplicate-name message names",
    "rlb/ha/kaconf.py": "keepalived.conf's words, and the configuration text in rlb's own "
                        "language it writes from them, which tests/unit/ha/test_kaconf.py "
                        "runs through the grammar (and checks against golden files)",
    "rlb/ops/metrics.py": "Prometheus' names: metric and label names and values (state, "
                          "instance, weight...), which promtool checks "
                          "(tests/dataplane/test_metrics_live.py)",
}

_DECLARING = {"words"}                              # every constant in the call
_DEFINING = ("command", "node", "completer")        # the first argument
_NAMING = {"get", "pop", "setdefault"}              # the first argument
_ATTRIBUTE = {"getattr", "hasattr", "setattr"}      # the second argument


def _exempt(tree) -> set:
    """ids of the constants the forms above cover."""
    skip: set = set()

    def mark(node):
        skip.update(id(sub) for sub in ast.walk(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for k in node.keys:
                if k is not None:
                    mark(k)
        elif isinstance(node, ast.Subscript):
            mark(node.slice)
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            if name in _DECLARING:
                mark(node)
            elif name.endswith(_DEFINING) and node.args:
                mark(node.args[0])
            elif name in _NAMING and isinstance(f, ast.Attribute) and node.args:
                mark(node.args[0])
            elif name in _ATTRIBUTE and len(node.args) > 1:
                mark(node.args[1])
            for kw in node.keywords:
                if kw.arg == "key" and name.endswith("command"):
                    mark(kw.value)
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t for tt in targets for t in (tt.elts if isinstance(tt, ast.Tuple) else [tt])]
            if all(isinstance(t, ast.Name) and t.id.isupper() for t in names):
                mark(node.value)
    return skip


def literals(source: str, rel: str):
    """(line, word) of each literal in the source that is a keyword and no form above."""
    words = set(g._words)
    tree = ast.parse(source, rel)
    skip = _exempt(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and \
                node.value in words and id(node) not in skip:
            yield node.lineno, node.value


def mode_flags() -> set:
    """A Mode descriptor names its own ipvsadm flags: data, not grammar."""
    return {flag for m in plugins.modes().values() for flag in (m.flag, m.long_flag)}


def _modules():
    for path in sorted((ROOT / "rlb").rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), path


def test_command_words_are_written_once():
    flags = mode_flags()
    found = [f"{rel}:{line}: {word!r}" for rel, path in _modules()
             if not any(rel.startswith(e) for e in EXCEPTIONS)
             for line, word in literals(path.read_text(), rel) if word not in flags]
    assert not found, ("command words written outside their declaration (declare the "
                       "command, name the value once as a constant, or give the module's "
                       "reason in EXCEPTIONS):\n" + "\n".join(found))


def test_every_exception_is_still_needed():
    for prefix in EXCEPTIONS:
        hits = [w for rel, path in _modules() if rel.startswith(prefix)
                for _, w in literals(path.read_text(), rel)]
        assert hits, f"{prefix} writes no command word any more: drop its exception"


def test_the_scan_sees_a_second_spelling():
    src = 'if ctx.node == "dataplane":\n    line = "ip"\n'
    assert list(literals(src, "x.py")) == [(1, "dataplane"), (2, "ip")]


def test_the_scan_passes_the_forms():
    src = '\n'.join([
        'g.words(**{"dataplane": "help"})',
        'g.command("dataplane", node="exec", key=("dev",))(f)',
        'g.completer("dev", f)',
        'row = {"dev": 1}; row["addr"]; row.get("ip"); getattr(svc, "match", None)',
        'SWITCHES = {"busy_poll": "busy-poll"}',
    ])
    assert list(literals(src, "x.py")) == []


def test_the_scan_covers_every_module():
    """Nothing is skipped whole but what EXCEPTIONS says: the command modules and the
    running configuration are scanned like any other."""
    from rlb.commands import base, configure, running, users
    from rlb.control import commit
    rels = {rel for rel, _ in _modules()}
    for module in (base, configure, users, running, commit):
        rel = Path(module.__file__).resolve().relative_to(ROOT).as_posix()
        assert rel in rels and not any(rel.startswith(e) for e in EXCEPTIONS), rel
    assert len(EXCEPTIONS) <= 7      # the sixth: keepalived.conf's translator; the
                                     # seventh: the metrics' names
