// oneDNN's C API (Debian libdnnl-dev 2.6, OpenMP CPU runtime; Debian ships no dnnl.pc, so the
// header is found in /usr/include and the library by name). The OpenMP thread-count calls are
// declared here because clang does not see GCC's omp.h; libdnnl itself links libgomp.
#include <oneapi/dnnl/dnnl.h>

int omp_get_max_threads(void);
void omp_set_num_threads(int count);
