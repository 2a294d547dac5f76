/* threads: 4 worker threads, each with __thread data (a distinct 64-bit value and a string),
 * its tid and its TLS address recorded at start; all increment a mutex-protected shared
 * counter and their own heartbeat. The main thread has TLS of its own too.
 * At SIGTERM: every heartbeat and the shared counter advance (threads alive and running), each
 * thread finds its TLS value, string and address (fs_base) and its tid unchanged, all threads
 * stop and are joined, the mutex is free and shared == the sum of per-thread increments.
 * CKPT_SELFTEST_BREAK: 1 thread 1's TLS value overwritten, 2 thread 2's heartbeat stopped,
 * 3 the mutex left locked by a thread that exited, 4 thread 3's TLS string overwritten.
 * CKPT_BUSY=1: the workers spin instead of sleeping between steps (CPU pressure for the
 * migration policy tests). */
#include "ckpt_common.h"
#include <pthread.h>
#include <sys/syscall.h>

#define NTHREADS 4

struct worker {
    pthread_t th;
    int idx;
    pid_t tid;                 /* gettid() at start */
    uint64_t *tls_value_addr;  /* &tls_value in that thread */
    char *tls_name_addr;
    uint64_t increments;       /* under mtx */
    volatile uint64_t heartbeat;
    volatile int frozen;       /* selftest: stop the heartbeat */
    int check_req, check_done; /* atomics */
    char check_result[200];    /* "" when the thread's own check passed */
    int joined;
};

static int busy;  /* CKPT_BUSY */
static __thread uint64_t tls_value;
static __thread char tls_name[32];
static struct worker workers[NTHREADS];
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static uint64_t shared; /* under mtx */
static int started, stop; /* atomics */
static double patience = 3.0; /* seconds per bounded wait; 0.5 once a thread is stuck */

static uint64_t expected_value(int idx) { return 0x7E5700000000ull + 0x1111111ull * (uint64_t)(idx + 1); }
static void expected_name(int idx, char *buf, size_t len) { snprintf(buf, len, "tls-of-thread-%d", idx); }
static pid_t my_tid(void) { return (pid_t)syscall(SYS_gettid); }

/* The thread's own view of its TLS and tid; "" when intact. */
static void self_check(struct worker *w, char *out, size_t len)
{
    char want[32];
    expected_name(w->idx, want, sizeof want);
    out[0] = '\0';
    if (tls_value != expected_value(w->idx))
        snprintf(out, len, "thread %d TLS value %#llx, want %#llx", w->idx,
                 (unsigned long long)tls_value, (unsigned long long)expected_value(w->idx));
    else if (strcmp(tls_name, want) != 0)
        snprintf(out, len, "thread %d TLS string \"%.31s\", want \"%s\"", w->idx, tls_name, want);
    else if (&tls_value != w->tls_value_addr || tls_name != w->tls_name_addr)
        snprintf(out, len, "thread %d TLS moved: %p, was %p (fs_base lost?)", w->idx,
                 (void *)&tls_value, (void *)w->tls_value_addr);
    else if (my_tid() != w->tid)
        snprintf(out, len, "thread %d tid %d, was %d", w->idx, (int)my_tid(), (int)w->tid);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    tls_value = expected_value(w->idx);
    expected_name(w->idx, tls_name, sizeof tls_name);
    w->tid = my_tid();
    w->tls_value_addr = &tls_value;
    w->tls_name_addr = tls_name;
    __atomic_add_fetch(&started, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&mtx);
        shared++;
        w->increments++;
        pthread_mutex_unlock(&mtx);
        if (!w->frozen)
            w->heartbeat++;
        if (__atomic_load_n(&w->check_req, __ATOMIC_ACQUIRE) && !w->check_done) {
            self_check(w, w->check_result, sizeof w->check_result);
            __atomic_store_n(&w->check_done, 1, __ATOMIC_RELEASE);
        }
        if (busy) {  /* no clock: a restore on another host may see it jump */
            for (volatile int k = 0; k < 200000; k++)
                ;
        } else {
            ckpt_sleep_ms(1);
        }
    }
    return NULL;
}

static void *lock_and_leave(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mtx);
    return NULL;
}

static void apply_break(int brk)
{
    if (brk == 1) {
        ckpt_note_break("thread 1 TLS value overwritten");
        *workers[1].tls_value_addr ^= 0xFF;
    } else if (brk == 2) {
        ckpt_note_break("thread 2 heartbeat stopped");
        workers[2].frozen = 1;
    } else if (brk == 3) {
        pthread_t t;
        ckpt_note_break("mutex left locked by an exited thread");
        pthread_create(&t, NULL, lock_and_leave, NULL);
        pthread_join(t, NULL);
    } else if (brk == 4) {
        ckpt_note_break("thread 3 TLS string overwritten");
        workers[3].tls_name_addr[0] = 'X';
    }
}

/* Every heartbeat and the shared counter must advance within 3 s. */
static void check_running(void)
{
    uint64_t h0[NTHREADS], s0 = __atomic_load_n(&shared, __ATOMIC_RELAXED);
    int moving[NTHREADS] = {0}, all = 0, shared_moved = 0;
    for (int i = 0; i < NTHREADS; i++)
        h0[i] = workers[i].heartbeat;
    double deadline = ckpt_now() + 3.0;
    while (!all && ckpt_now() < deadline) {
        ckpt_sleep_ms(10);
        all = 1;
        for (int i = 0; i < NTHREADS; i++) {
            moving[i] |= workers[i].heartbeat >= h0[i] + 5;
            all &= moving[i];
        }
        shared_moved = __atomic_load_n(&shared, __ATOMIC_RELAXED) > s0;
        all &= shared_moved;
    }
    for (int i = 0; i < NTHREADS; i++)
        if (!moving[i])
            ckpt_fail("thread %d heartbeat stuck at %llu (was %llu at SIGTERM)", i,
                      (unsigned long long)workers[i].heartbeat, (unsigned long long)h0[i]);
    if (!shared_moved)
        ckpt_fail("shared counter stuck at %llu (mutex blocked?)", (unsigned long long)s0);
    if (!all)
        patience = 0.5;
}

static void check_tls(void)
{
    char want[32];
    expected_name(NTHREADS, want, sizeof want);
    if (tls_value != expected_value(NTHREADS) || strcmp(tls_name, want) != 0)
        ckpt_fail("main thread TLS %#llx \"%.31s\"", (unsigned long long)tls_value, tls_name);
    for (int i = 0; i < NTHREADS; i++)
        __atomic_store_n(&workers[i].check_req, 1, __ATOMIC_RELEASE);
    double deadline = ckpt_now() + patience;
    for (int i = 0; i < NTHREADS; i++) {
        while (!__atomic_load_n(&workers[i].check_done, __ATOMIC_ACQUIRE) && ckpt_now() < deadline)
            ckpt_sleep_ms(5);
        if (!__atomic_load_n(&workers[i].check_done, __ATOMIC_ACQUIRE))
            ckpt_fail("thread %d did not answer its TLS check", i);
        else if (workers[i].check_result[0])
            ckpt_fail("%s", workers[i].check_result);
    }
}

static void stop_and_join(void)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    long ns = deadline.tv_nsec + (long)(patience * 1e9);
    deadline.tv_sec += ns / 1000000000L;
    deadline.tv_nsec = ns % 1000000000L;
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    int all = 1;
    for (int i = 0; i < NTHREADS; i++) {
        int rc = pthread_timedjoin_np(workers[i].th, NULL, &deadline);
        workers[i].joined = rc == 0;
        if (rc != 0) {
            ckpt_fail("thread %d could not be joined: %s", i, strerror(rc));
            all = 0;
        }
    }
    if (!all)
        return;
    int rc = pthread_mutex_trylock(&mtx);
    if (rc != 0) {
        ckpt_fail("mutex still locked after all threads stopped: %s", strerror(rc));
        return;
    }
    uint64_t sum = 0;
    for (int i = 0; i < NTHREADS; i++)
        sum += workers[i].increments;
    if (sum != shared)
        ckpt_fail("shared counter %llu != sum of per-thread increments %llu",
                  (unsigned long long)shared, (unsigned long long)sum);
    pthread_mutex_unlock(&mtx);
}

int main(void)
{
    ckpt_init("threads");
    busy = getenv("CKPT_BUSY") != NULL && getenv("CKPT_BUSY")[0] == '1';
    tls_value = expected_value(NTHREADS);
    expected_name(NTHREADS, tls_name, sizeof tls_name);
    for (int i = 0; i < NTHREADS; i++) {
        workers[i].idx = i;
        int rc = pthread_create(&workers[i].th, NULL, worker_main, &workers[i]);
        if (rc != 0)
            ckpt_die("pthread_create: %s", strerror(rc));
    }
    for (int i = 0; i < NTHREADS; i++)
        while (__atomic_load_n(&started, __ATOMIC_ACQUIRE) < NTHREADS || workers[i].heartbeat < 10)
            ckpt_sleep_ms(1);
    ckpt_ready();
    ckpt_wait_term();
    apply_break(ckpt_break());
    check_running();
    check_tls();
    stop_and_join();
    ckpt_finish();
}
