"""The lines of the metrics page's large families, written in C (rlb.ops.metrics).

At 1,000 services x 16 real servers the page has 200,000 lines a scrape; formatted in
Python they took ~340 ms with the interpreter lock held (the control socket waited).
`column` writes one family's lines for every row, `HEAD LABELS TAIL VALUE\\n`, from the
rows' label texts (made once per real server and kept: rlb.ops.metrics.Labels) and a
flat array of uint64 values, without the lock.
"""
from cpython cimport array
from libc.stdint cimport uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy


cdef inline size_t _u64(char *out, uint64_t v) noexcept nogil:
    """v in decimal at out; the number of digits."""
    cdef char tmp[20]
    cdef size_t n = 0, i
    if v == 0:
        out[0] = 48
        return 1
    while v:
        tmp[n] = <char>(48 + v % 10)
        v //= 10
        n += 1
    for i in range(n):
        out[i] = tmp[n - 1 - i]
    return n


def column(bytes head, list labels, bytes tail, array.array values, Py_ssize_t stride,
           Py_ssize_t offset, bytes mask=None):
    """b"".join(head + labels[k] + tail + b" %d\\n" % values[k * stride + offset]) over
    the rows k (those whose mask byte is not 0, when a mask is given)."""
    cdef Py_ssize_t n = len(labels), k, total = 0
    cdef Py_ssize_t hl = len(head), tl = len(tail)
    cdef const char **ptr
    cdef Py_ssize_t *lens
    cdef const char *h = head
    cdef const char *t = tail
    cdef const unsigned char *mk = NULL
    cdef unsigned long long *v
    cdef char *out
    cdef char *at
    if values.typecode != "Q":
        raise TypeError("values: an array('Q')")
    if n and (n - 1) * stride + offset >= len(values):
        raise IndexError("values: fewer than the rows")
    if mask is not None:
        if len(mask) < n:
            raise IndexError("mask: fewer than the rows")
        mk = <const unsigned char *><const char *>mask
    v = values.data.as_ulonglongs
    ptr = <const char **>malloc(sizeof(char *) * (n + 1))
    lens = <Py_ssize_t *>malloc(sizeof(Py_ssize_t) * (n + 1))
    if ptr == NULL or lens == NULL:
        free(ptr)
        free(lens)
        raise MemoryError
    try:
        for k in range(n):
            label = labels[k]
            if type(label) is not bytes:
                raise TypeError("labels: bytes")
            ptr[k] = <const char *><bytes>label
            lens[k] = len(<bytes>label)
            total += hl + lens[k] + tl + 22
        out = <char *>malloc(total + 1)
        if out == NULL:
            raise MemoryError
        try:
            at = out
            with nogil:
                for k in range(n):
                    if mk != NULL and mk[k] == 0:
                        continue
                    memcpy(at, h, hl)
                    at += hl
                    memcpy(at, ptr[k], lens[k])
                    at += lens[k]
                    memcpy(at, t, tl)
                    at += tl
                    at[0] = 32
                    at += 1
                    at += _u64(at, v[k * stride + offset])
                    at[0] = 10
                    at += 1
            return out[:at - out]
        finally:
            free(out)
    finally:
        free(ptr)
        free(lens)


def group_sums(array.array values, Py_ssize_t stride, Py_ssize_t offset, bytes groups,
               Py_ssize_t ngroups):
    """[sum of values[k * stride + offset] over the rows k of group g] for g < ngroups
    (groups: a byte per row, its group)."""
    cdef Py_ssize_t n = len(groups), k
    cdef const unsigned char *gp = <const unsigned char *><const char *>groups
    cdef unsigned long long *v
    cdef unsigned long long sums[256]
    if values.typecode != "Q" or not 0 < ngroups <= 256:
        raise ValueError("group_sums: array('Q') values, 1..256 groups")
    if n and (n - 1) * stride + offset >= len(values):
        raise IndexError("values: fewer than the rows")
    v = values.data.as_ulonglongs
    for k in range(ngroups):
        sums[k] = 0
    for k in range(n):
        if gp[k] < ngroups:
            sums[gp[k]] += v[k * stride + offset]
    return [sums[k] for k in range(ngroups)]
