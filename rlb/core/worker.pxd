# The worker lcores' loop (worker.pyx): what the engine launches on each.
cdef int worker_main(void *arg) noexcept nogil
