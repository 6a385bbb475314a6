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
"""

cdef extern from *:
    """
    #include <pthread.h>
    #include <signal.h>
    #include <sched.h>
    #include <stdint.h>

    #ifndef DR_POOL_MAX
    #define DR_POOL_MAX 16
    #endif
    #if defined(__x86_64__) || defined(__i386__)
    #define dr_cpu_relax() __builtin_ia32_pause()
    #else
    #define dr_cpu_relax() ((void)0)
    #endif

    typedef void (*dr_task_fn)(void*);

    typedef struct {
        pthread_mutex_t busy;    /* held by the caller that owns the current task */
        pthread_mutex_t lock;    /* protects sleeping helpers and thread creation */
        pthread_cond_t wake;
        int started;             /* helper threads created */
        int want;                /* helpers asked for the current task */
        dr_task_fn fn;
        void* arg;
        unsigned long gen;       /* atomic: task generation, bumped per task */
        unsigned long ticket;    /* atomic: gen of the open task, 0 when closed */
        int inside;              /* atomic: helpers that may be inside fn */
        int sleepers;            /* atomic: helpers waiting on the condition variable */
        unsigned long spin;      /* pause iterations a helper polls before sleeping */
    } dr_pool_t;

    static dr_pool_t dr_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                                PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 2000};
    static pthread_once_t dr_pool_once = PTHREAD_ONCE_INIT;

    static void dr_pool_after_fork(void) {
        /* the child has only the forking thread: forget the helpers, fresh locks */
        pthread_mutex_init(&dr_pool.busy, NULL);
        pthread_mutex_init(&dr_pool.lock, NULL);
        pthread_cond_init(&dr_pool.wake, NULL);
        dr_pool.started = 0;
        dr_pool.want = 0;
        __atomic_store_n(&dr_pool.ticket, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&dr_pool.inside, 0, __ATOMIC_SEQ_CST);
        __atomic_store_n(&dr_pool.sleepers, 0, __ATOMIC_SEQ_CST);
    }

    static void dr_pool_register(void) { pthread_atfork(NULL, NULL, dr_pool_after_fork); }

    static void* dr_pool_helper(void* p) {
        int idx = (int)(intptr_t)p;
        unsigned long seen = __atomic_load_n(&dr_pool.gen, __ATOMIC_ACQUIRE), g;
        unsigned long k;
        for (;;) {
            k = 0;
            while ((g = __atomic_load_n(&dr_pool.gen, __ATOMIC_ACQUIRE)) == seen
                   && k < dr_pool.spin) {
                dr_cpu_relax();
                k++;
            }
            if (g == seen) {
                pthread_mutex_lock(&dr_pool.lock);
                __atomic_add_fetch(&dr_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                while ((g = __atomic_load_n(&dr_pool.gen, __ATOMIC_SEQ_CST)) == seen)
                    pthread_cond_wait(&dr_pool.wake, &dr_pool.lock);
                __atomic_sub_fetch(&dr_pool.sleepers, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&dr_pool.lock);
            }
            seen = g;
            if (idx >= __atomic_load_n(&dr_pool.want, __ATOMIC_RELAXED))
                continue;
            /* enter, then check the task is still open (pairs with dr_pool_end) */
            __atomic_add_fetch(&dr_pool.inside, 1, __ATOMIC_SEQ_CST);
            if (__atomic_load_n(&dr_pool.ticket, __ATOMIC_SEQ_CST) == g)
                dr_pool.fn(dr_pool.arg);
            __atomic_sub_fetch(&dr_pool.inside, 1, __ATOMIC_SEQ_CST);
        }
        return NULL;
    }

    /* create helpers up to n (caller holds busy); returns how many exist */
    static int dr_pool_grow(int n) {
        sigset_t all, old;
        pthread_attr_t attr;
        pthread_t t;
        if (n > DR_POOL_MAX) n = DR_POOL_MAX;
        if (dr_pool.started >= n) return dr_pool.started;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        pthread_mutex_lock(&dr_pool.lock);
        while (dr_pool.started < n) {
            if (pthread_create(&t, &attr, dr_pool_helper, (void*)(intptr_t)dr_pool.started))
                break;
            dr_pool.started++;
        }
        pthread_mutex_unlock(&dr_pool.lock);
        pthread_attr_destroy(&attr);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return dr_pool.started;
    }

    static int dr_pool_begin(dr_task_fn fn, void* arg, int nhelpers) {
        unsigned long g;
        if (nhelpers <= 0) return 0;
        pthread_once(&dr_pool_once, dr_pool_register);
        if (pthread_mutex_trylock(&dr_pool.busy) != 0) return 0;
        if (dr_pool_grow(nhelpers) < nhelpers) nhelpers = dr_pool.started;
        if (nhelpers <= 0) {
            pthread_mutex_unlock(&dr_pool.busy);
            return 0;
        }
        dr_pool.fn = fn;
        dr_pool.arg = arg;
        __atomic_store_n(&dr_pool.want, nhelpers, __ATOMIC_RELAXED);
        g = dr_pool.gen + 1;
        if (g == 0) g = 1;
        __atomic_store_n(&dr_pool.ticket, g, __ATOMIC_SEQ_CST);
        __atomic_store_n(&dr_pool.gen, g, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&dr_pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
            pthread_mutex_lock(&dr_pool.lock);
            pthread_cond_broadcast(&dr_pool.wake);
            pthread_mutex_unlock(&dr_pool.lock);
        }
        return nhelpers;
    }

    static void dr_pool_end(void) {
        unsigned long k = 0;
        __atomic_store_n(&dr_pool.ticket, 0, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&dr_pool.inside, __ATOMIC_SEQ_CST) > 0) {
            if (++k < 1000) dr_cpu_relax(); else sched_yield();
        }
        pthread_mutex_unlock(&dr_pool.busy);
    }
    """
    ctypedef void (*dr_task_fn)(void*) noexcept nogil
    int dr_pool_begin(dr_task_fn fn, void* arg, int nhelpers) nogil
    void dr_pool_end() nogil
