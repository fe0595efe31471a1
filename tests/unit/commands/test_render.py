"""rlb.commands.render: where a `|` splits a line, which filter expressions are refused, JSON."""
import json

import pytest

from rlb.model.model import CommandError
from rlb.commands.render import as_json, compile_filter, grep, split_pipes


@pytest.mark.parametrize("line, command, filters", [
    ("dpip addr show", "dpip addr show", []),
    ("dpip addr show | json", "dpip addr show ", [(16, " json")]),
    ("a | include x | exclude y", "a ", [(3, " include x "), (15, " exclude y")]),
    ("a|b | json", "a|b ", [(5, " json")]),                  # | inside a word: no split
    ('x "a | b" | json', 'x "a | b" ', [(11, " json")]),      # nor inside quotes
    ('x "a \\" | b" | json', 'x "a \\" | b" ', [(14, " json")]),
    ("x |json", "x |json", []),                               # `|` must stand alone
    ("! comment | json", "! comment | json", []),
    ("x |", "x ", [(3, "")]),
])
def test_split_pipes(line, command, filters):
    assert split_pipes(line) == (command, filters)


def test_a_pipe_still_being_typed_is_not_a_split():
    assert split_pipes("x |", partial=True) == ("x |", [])
    assert split_pipes("x | ", partial=True) == ("x ", [(3, " ")])


@pytest.mark.parametrize("regex", ["dpdk0", "a|b", r"^inet \d+\.", "(?:ab)+c", ".*x.*y",
                                   "[0-9]{1,3}", "x(?=y)", "(a)?b"])
def test_plain_expressions_pass(regex):
    compile_filter(regex)


@pytest.mark.parametrize("regex", ["(a+)+$", "(a*)*b", "(foo|bar)+z", "(.*a){20}",
                                   ".*.*.*.*.*x", "[", "(", "a" * 300, "(?P<x>a)(?P=x"])
def test_costly_or_broken_expressions_are_refused(regex):
    with pytest.raises(CommandError):
        compile_filter(regex)


def test_grep_and_json():
    text = "inet 10.0.0.1 dpdk0\ninet 10.0.0.2 dpdk1\n"
    assert grep(text, "dpdk1", keep=True) == "inet 10.0.0.2 dpdk1"
    assert grep(text, "dpdk1", keep=False) == "inet 10.0.0.1 dpdk0"
    data = {"b": [1, {"z": 1, "a": None}], "a": object}
    out = as_json(data)
    assert out.splitlines()[1] == '  "a": "<class \'object\'>",'
    assert json.loads(out)["b"] == [1, {"a": None, "z": 1}]


def test_printable_escapes_every_control_character_but_newline_and_tab():
    from rlb.commands.render import printable
    assert printable("show \x1b[31mvs\x07\r\x7f\x9b2J \udcff") == \
        "show \\x1b[31mvs\\x07\\x0d\\x7f\\x9b2J \\udcff"
    assert printable("a\tb\nc é €") == "a\tb\nc é €"
