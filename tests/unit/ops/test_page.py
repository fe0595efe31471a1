"""rlb.ops.page, the C writer of the metrics page's large families: the same text as the
Python it replaced, every row or the masked ones, any uint64; bad input refused."""
from array import array

import pytest

from rlb.ops.page import column, group_sums


def python(head, labels, tail, values, stride, offset, mask=None):
    return b"".join(head + lab + tail + b" %d\n" % values[k * stride + offset]
                    for k, lab in enumerate(labels) if mask is None or mask[k])


def test_column_writes_what_python_would():
    labels = [b'service="TCP 10.0.0.1:80"', b'service="UDP 10.0.0.2:53"', b""]
    values = array("Q", [0, 1, 10, 2 ** 64 - 1, 12345678901234, 7])
    for offset in (0, 1):
        got = column(b"rlb_x_total{", labels, b',direction="in"}', values, 2, offset)
        assert got == python(b"rlb_x_total{", labels, b',direction="in"}', values, 2, offset)
    mask = b"\x01\x00\x01"
    assert column(b"x{", labels, b"}", values, 2, 1, mask) == \
        python(b"x{", labels, b"}", values, 2, 1, mask)
    assert column(b"x{", [], b"}", array("Q"), 3, 0) == b""


def test_column_refuses_what_it_cannot_write():
    with pytest.raises(IndexError):
        column(b"x{", [b"a", b"b"], b"}", array("Q", [1, 2, 3]), 2, 1)
    with pytest.raises(TypeError):
        column(b"x{", ["text"], b"}", array("Q", [1]), 1, 0)
    with pytest.raises(TypeError):
        column(b"x{", [b"a"], b"}", array("d", [1.0]), 1, 0)
    with pytest.raises(IndexError):
        column(b"x{", [b"a", b"b"], b"}", array("Q", [1, 2]), 1, 0, b"\x01")


def test_group_sums():
    values = array("Q", [1, 100, 2, 200, 3, 300])
    assert group_sums(values, 2, 0, b"\x00\x01\x00", 2) == [4, 2]
    assert group_sums(values, 2, 1, b"\x01\x01\x01", 3) == [0, 600, 0]
    with pytest.raises(ValueError):
        group_sums(values, 2, 0, b"\x00", 0)
