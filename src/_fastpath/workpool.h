/* workpool.h
 *
 * A process-wide pool of pure-C helper threads for block-parallel decoding (GIL-free).
 *
 * ``dr_pool_begin(fn, arg, nhelpers)`` offers the task ``fn(arg)`` to up to ``nhelpers``
 * helper threads and returns how many were offered (0 when the pool is in use by another
 * call, when threads cannot be created, or for ``nhelpers <= 0``: the caller then simply does
 * all the work itself). The caller then runs ``fn(arg)`` itself and must call
 * ``dr_pool_end()`` (only after a non-zero ``dr_pool_begin``), which closes the task and waits
 * until no helper is inside ``fn`` any more; after it returns ``arg`` may be freed.
 *
 * ``fn`` must be written so that any number of threads (including none besides the caller)
 * can run it concurrently and each returns once no work is left (work claimed through an
 * atomic counter). A helper that the OS wakes late finds the task closed and goes back to
 * sleep without touching ``arg``: the caller never waits for a helper that has not started.
 *
 * Helpers are created on first use, never touch the GIL or Python objects, block every
 * signal, spin for a few microseconds after a task (for back-to-back calls) and then sleep on
 * a condition variable. After ``fork()`` the child starts with an empty pool.
 *
 * On Linux >= 6.12 each helper asks the (EEVDF) scheduler for a 0.1 ms slice
 * (``sched_attr.sched_runtime``, unprivileged; priority, weight and policy unchanged): a
 * helper runs in bursts well under a millisecond, and with the default ~1.4 ms slice a helper
 * woken on a core that runs a CPU-bound task (another process, a busy-waiting OpenMP thread)
 * often starts only after the whole call is over. Measured on 2 cores with a busy-waiting
 * neighbour: with the hint the helper takes part in nearly every call, without it in about
 * half the measurement windows.
 *
 * The helpers also keep off the caller's current CPU (their affinity is the CPU set they
 * started with minus the caller's CPU, re-set only when the caller's CPU changes): woken by
 * the caller, the kernel often places a helper on the caller's own CPU, where it merely takes
 * turns with the caller, and with a busy neighbour on the other core that placement can last
 * for seconds. Measured: without this, one 2-thread benchmark row in three ran at 1-thread
 * speed; with it, none.
 */
#ifndef DR_WORKPOOL_H
#define DR_WORKPOOL_H

#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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
    unsigned long grown_at;  /* atomic: gen when helpers were last created */
    unsigned long long slice_ns;  /* scheduler slice helpers ask for (0: default) */
    int excluded;            /* caller CPU the helpers' affinity excludes (-1: none) */
    long tids[DR_POOL_MAX];  /* atomic: helper thread ids (0 until the helper runs) */
#if defined(__linux__) && defined(CPU_SET)
    cpu_set_t base;          /* CPUs allowed when the helpers were created */
#endif
} dr_pool_t;

static dr_pool_t dr_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                            PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, 0, 0, 0, 1000, 0, 100000, -1};

/* Linux >= 6.12 (EEVDF): ask for a short scheduler slice for the calling thread, a
   hint that lets a thread which runs in short bursts start promptly on a core busy
   with a CPU-bound task. Policy and nice value unchanged; older kernels ignore the
   field. Best effort, no privileges needed. */
static void dr_pool_request_slice(unsigned long long ns) {
#if defined(__linux__) && defined(SYS_sched_setattr)
    struct {
        uint32_t size, sched_policy;
        uint64_t sched_flags;
        int32_t sched_nice;
        uint32_t sched_priority;
        uint64_t sched_runtime, sched_deadline, sched_period;
    } attr;
    if (ns == 0) return;
    memset(&attr, 0, sizeof(attr));
    attr.size = sizeof(attr);
    if (syscall(SYS_sched_getattr, 0, &attr, sizeof(attr), 0) != 0) return;
    if (attr.sched_policy != 0) return;  /* only for SCHED_OTHER */
    attr.size = sizeof(attr);
    attr.sched_flags = 0;
    attr.sched_runtime = ns;
    syscall(SYS_sched_setattr, 0, &attr, 0);
#else
    (void)ns;
#endif
}

static pthread_once_t dr_pool_once = PTHREAD_ONCE_INIT;

static void dr_pool_after_fork(void) {
    /* the child has only the forking thread: forget the helpers, fresh locks */
    pthread_mutex_init(&dr_pool.busy, NULL);
    pthread_mutex_init(&dr_pool.lock, NULL);
    pthread_cond_init(&dr_pool.wake, NULL);
    dr_pool.started = 0;
    dr_pool.want = 0;
    dr_pool.excluded = -1;
    memset(dr_pool.tids, 0, sizeof(dr_pool.tids));
    __atomic_store_n(&dr_pool.ticket, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&dr_pool.inside, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&dr_pool.sleepers, 0, __ATOMIC_SEQ_CST);
}

static void dr_pool_register(void) { pthread_atfork(NULL, NULL, dr_pool_after_fork); }

static void* dr_pool_helper(void* p) {
    int idx = (int)(intptr_t)p;
    /* the gen before the task that created us: a helper that starts late still
       sees that task (if it is still open) */
    unsigned long seen = __atomic_load_n(&dr_pool.grown_at, __ATOMIC_ACQUIRE), g;
    unsigned long k;
#if defined(__linux__) && defined(SYS_gettid)
    __atomic_store_n(&dr_pool.tids[idx], (long)syscall(SYS_gettid), __ATOMIC_RELEASE);
#endif
    dr_pool_request_slice(dr_pool.slice_ns);
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
    __atomic_store_n(&dr_pool.grown_at, dr_pool.gen, __ATOMIC_RELEASE);
#if defined(__linux__) && defined(CPU_SET)
    if (sched_getaffinity(0, sizeof(dr_pool.base), &dr_pool.base) != 0)
        CPU_ZERO(&dr_pool.base);
    dr_pool.excluded = -1;
#endif
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

/* Keep the helpers off the caller's CPU (caller holds busy). Woken by the caller, a
   helper is often placed on the caller's own CPU (wake-affine), where it only takes
   turns with the caller, for as long as that placement lasts: with a CPU-bound task
   (another process, a busy-waiting OpenMP thread) on the other core the scheduler can
   keep it there for seconds. So the helpers' affinity is the CPU set they started
   with minus the caller's current CPU, updated (one syscall per helper) only when the
   caller's CPU changes. Linux only; best effort. */
static void dr_pool_avoid_caller_cpu(void) {
#if defined(__linux__) && defined(CPU_SET)
    cpu_set_t mask;
    int cpu = sched_getcpu(), i, all = 1;
    long tid;
    if (cpu < 0 || cpu == dr_pool.excluded || cpu >= CPU_SETSIZE) return;
    if (!CPU_ISSET(cpu, &dr_pool.base) || CPU_COUNT(&dr_pool.base) < 2) return;
    mask = dr_pool.base;
    CPU_CLR(cpu, &mask);
    for (i = 0; i < dr_pool.started; i++) {
        tid = __atomic_load_n(&dr_pool.tids[i], __ATOMIC_ACQUIRE);
        if (tid == 0) { all = 0; continue; }
        sched_setaffinity((pid_t)tid, sizeof(mask), &mask);
    }
    if (all) dr_pool.excluded = cpu;
#endif
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
    dr_pool_avoid_caller_cpu();
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

static unsigned long dr_pool_set_spin(unsigned long n) {
    unsigned long old = dr_pool.spin;
    dr_pool.spin = n;
    return old;
}

static unsigned long long dr_pool_set_slice(unsigned long long ns) {
    unsigned long long old = dr_pool.slice_ns;
    dr_pool.slice_ns = ns;
    return old;
}

static void dr_pool_end(void) {
    unsigned long k = 0;
    __atomic_store_n(&dr_pool.ticket, 0, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&dr_pool.inside, __ATOMIC_SEQ_CST) > 0) {
        if (++k < 1000) dr_cpu_relax(); else sched_yield();
    }
    pthread_mutex_unlock(&dr_pool.busy);
}

#endif /* DR_WORKPOOL_H */
