# The stats API (stats.pyx): what the Engine's observation methods return.
from libc.stdint cimport uint64_t
from rlb.core.types cimport engine_t, conn_t, neigh_t

cdef dict port_info(engine_t *e, int i, str name)
cdef dict port_stats(engine_t *e, int i)
cdef object bond_info(engine_t *e, int i)
cdef dict reasons(engine_t *e)
cdef list workers(engine_t *e)
cdef dict pool(engine_t *e)
cdef dict svc_stats(engine_t *e, int slot)
cdef dict dest_stats(engine_t *e, int slot)
cdef dict passive(engine_t *e, int slot)
cdef list laddr_stats(engine_t *e, int svc_slot)
cdef dict conn_summary(engine_t *e)
cdef object svc_bulk(engine_t *e, list slots)
cdef object dest_bulk(engine_t *e, list slots)
cdef void conn_rows(conn_t *buf, int worker, list out, int limit)
cdef void neigh_rows(engine_t *e, neigh_t *buf, int worker, dict merged, uint64_t now)
