# cython: language_level=3
"""A process-wide pool of pure-C helper threads for block-parallel decoding (GIL-free).

``dr_pool_begin(fn, arg, nhelpers)`` offers the task ``fn(arg)`` to up to ``nhelpers``
helper threads and returns how many were offered (0 when the pool is in use by another
call, when threads cannot be created, or for ``nhelpers <= 0``: the caller then simply does
all the work itself). The caller then runs ``fn(arg)`` itself and must call
``dr_pool_end()`` (only after a non-zero ``dr_pool_begin``), which closes the task and waits
until no helper is inside ``fn`` any more; after it returns ``arg`` may be freed.

``fn`` must be written so that any number of threads (including none besides the caller)
can run it concurrently and each returns once no work is left (work claimed through an
atomic counter). A helper that the OS wakes late finds the task closed and goes back to
sleep without touching ``arg``: the caller never waits for a helper that has not started.

Helpers are created on first use, never touch the GIL or Python objects, block every
signal, spin for a few microseconds after a task (for back-to-back calls) and then sleep on
a condition variable. After ``fork()`` the child starts with an empty pool.

On Linux >= 6.12 each helper asks the (EEVDF) scheduler for a 0.1 ms slice
(``sched_attr.sched_runtime``, unprivileged; priority, weight and policy unchanged): a
helper runs in bursts well under a millisecond, and with the default ~1.4 ms slice a helper
woken on a core that runs a CPU-bound task (another process, a busy-waiting OpenMP thread)
often starts only after the whole call is over. Measured on 2 cores with a busy-waiting
neighbour: with the hint the helper takes part in nearly every call, without it in about
half the measurement windows.

The helpers also keep off the caller's current CPU (their affinity is the CPU set they
started with minus the caller's CPU, re-set only when the caller's CPU changes): woken by
the caller, the kernel often places a helper on the caller's own CPU, where it merely takes
turns with the caller, and with a busy neighbour on the other core that placement can last
for seconds. Measured: without this, one 2-thread benchmark row in three ran at 1-thread
speed; with it, none.
"""

cdef extern from "workpool.h":
    ctypedef void (*dr_task_fn)(void*) noexcept nogil
    int dr_pool_begin(dr_task_fn fn, void* arg, int nhelpers) nogil
    void dr_pool_end() nogil
    unsigned long dr_pool_set_spin(unsigned long n) nogil
    unsigned long long dr_pool_set_slice(unsigned long long ns) nogil
