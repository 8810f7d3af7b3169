// CBLAS from OpenBLAS (Debian libopenblas-dev). Also declares openblas_set_num_threads, and
// one helper the kernels' thread pool needs from glibc's GNU extensions.
#define _GNU_SOURCE
#include <sched.h>
#include <cblas.h>

/// The cores in this process's CPU affinity mask, or 0 if it cannot be read.
static inline int megatron_affinity_core_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}
