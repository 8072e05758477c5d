// Counts heap allocations of a process, for the benchmark's "allocations per record" figure.
// Loaded with LD_PRELOAD (scripts/bench.sh builds it); the daemon and bench-decode read the
// count through dlsym("cloudwaste_malloc_count") when it is there and print nothing otherwise.
// Every allocation entry point of glibc is counted, then handed to glibc's own implementation.
// Allocations on librdkafka's own threads (named "rdk:…": its main thread and one per broker,
// which turn fetched messages into ops) are also counted apart, so that the benchmark can tell
// the daemon's own allocations from the library's.
#define _GNU_SOURCE
#include <stddef.h>
#include <stdatomic.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_ulong allocations;
static atomic_ulong librdkafkaAllocations;

// Whether this thread is one of librdkafka's, read from its name every 256 allocations (a thread
// is named right after it starts; reading the name is a system call). Initial-exec TLS: a
// preloaded library's thread-local storage is then set up without calling malloc.
static __thread __attribute__((tls_model("initial-exec"))) unsigned threadAllocations;
static __thread __attribute__((tls_model("initial-exec"))) int threadIsLibrdkafka;

static inline void count(void) {
    atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
    if ((threadAllocations++ & 255) == 0) {
        char name[16] = {0};
        threadIsLibrdkafka = prctl(PR_GET_NAME, name, 0, 0, 0) == 0 && strncmp(name, "rdk:", 4) == 0;
    }
    if (threadIsLibrdkafka) atomic_fetch_add_explicit(&librdkafkaAllocations, 1, memory_order_relaxed);
}

unsigned long cloudwaste_malloc_count(void) { return atomic_load_explicit(&allocations, memory_order_relaxed); }
unsigned long cloudwaste_malloc_count_librdkafka(void) { return atomic_load_explicit(&librdkafkaAllocations, memory_order_relaxed); }

// With CLOUDWASTE_MALLOC_REPORT set, the count is printed to stderr at exit: for builds that do
// not read it themselves (an older build measured beside a newer one).
__attribute__((destructor)) static void report(void) {
    if (!getenv("CLOUDWASTE_MALLOC_REPORT")) return;
    char line[128];
    int n = snprintf(line, sizeof line, "malloc-counter: pid %d, %lu allocations (%lu on librdkafka's threads)\n", (int)getpid(),
                     cloudwaste_malloc_count(), cloudwaste_malloc_count_librdkafka());
    if (n > 0) { ssize_t ignored = write(2, line, (size_t)n); (void)ignored; }
}

void *malloc(size_t n) { count(); return __libc_malloc(n); }
void *calloc(size_t n, size_t size) { count(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t n) { count(); return __libc_realloc(p, n); }
void *memalign(size_t alignment, size_t n) { count(); return __libc_memalign(alignment, n); }
void *aligned_alloc(size_t alignment, size_t n) { count(); return __libc_memalign(alignment, n); }
int posix_memalign(void **out, size_t alignment, size_t n) {
    count();
    void *p = __libc_memalign(alignment, n);
    if (!p && n) return ENOMEM;
    *out = p;
    return 0;
}
