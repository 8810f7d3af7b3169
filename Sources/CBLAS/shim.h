// CBLAS from OpenBLAS (Debian libopenblas-dev). Also declares openblas_set_num_threads.
#include <cblas.h>
