# DPDK EAL, lcores, launch, cycles and malloc: only the symbols rlb uses.
from libc.stdint cimport uint64_t

cdef extern from "rte_eal.h" nogil:
    int rte_eal_init(int argc, char **argv)
    int rte_eal_cleanup()

cdef extern from "rte_errno.h" nogil:
    int rte_errno "rte_errno"
    const char *rte_strerror(int errnum)

cdef extern from "rte_lcore.h" nogil:
    unsigned rte_lcore_id()
    unsigned rte_get_main_lcore()
    unsigned rte_lcore_count()
    unsigned rte_get_next_lcore(unsigned i, int skip_main, int wrap)
    int rte_socket_id()
    enum: RTE_MAX_LCORE

cdef extern from "rte_launch.h" nogil:
    ctypedef int (*lcore_function_t)(void *) noexcept nogil
    int rte_eal_remote_launch(lcore_function_t f, void *arg, unsigned worker_id)
    int rte_eal_wait_lcore(unsigned worker_id)
    void rte_eal_mp_wait_lcore()

cdef extern from "rte_cycles.h" nogil:
    uint64_t rte_rdtsc()
    uint64_t rte_get_tsc_hz()
    void rte_delay_us_sleep(unsigned us)

cdef extern from "rte_malloc.h" nogil:
    void *rte_zmalloc(const char *type, size_t size, unsigned align)
    void rte_free(void *ptr)

cdef extern from "rte_dev.h" nogil:
    int rte_dev_probe(const char *devargs)
    int rte_dev_remove(void *dev)

cdef extern from "rte_atomic.h" nogil:
    void rte_smp_wmb()
    void rte_smp_rmb()
    void rte_compiler_barrier()
