// Device selection, memory, errors and the cuBLAS GEMMs of libmegatron_cuda.so.
#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

namespace {
thread_local char last_error[1024] = "";

// cuBLAS's C interface, declared here (enums as int) so the library builds without its headers.
typedef void *cublasHandle;
typedef int (*CreateFn)(cublasHandle *);
typedef int (*SgemmFn)(cublasHandle, int, int, int, int, int, const float *, const float *, int, const float *, int,
                       const float *, float *, int);
typedef int (*SgemmBatchedFn)(cublasHandle, int, int, int, int, int, const float *, const float *, int, long long,
                              const float *, int, long long, const float *, float *, int, long long, int);
typedef int (*GemmExFn)(cublasHandle, int, int, int, int, int, const void *, const void *, int, int, const void *, int,
                        int, const void *, void *, int, int, int, int);
typedef int (*GemmStridedBatchedExFn)(cublasHandle, int, int, int, int, int, const void *, const void *, int, int,
                                      long long, const void *, int, int, long long, const void *, void *, int, int,
                                      long long, int, int, int);
typedef int (*SgemvFn)(cublasHandle, int, int, int, const float *, const float *, int, const float *, int,
                       const float *, float *, int);
typedef int (*SetMathModeFn)(cublasHandle, int);

struct CuBLAS {
    cublasHandle handle = nullptr;
    SgemmFn sgemm = nullptr;
    SgemmBatchedFn sgemmBatched = nullptr;
    GemmExFn gemmEx = nullptr;
    GemmStridedBatchedExFn gemmStridedBatchedEx = nullptr;
    SgemvFn sgemv = nullptr;
} cublas;

const int kOpN = 0, kOpT = 1;
const int kR32F = 0, kR16BF = 14, kCompute32F = 68, kGemmDefault = -1, kDefaultMath = 0;

bool synchronous = true;
void *workspace = nullptr;
size_t workspace_bytes = 0;

int cublas_check(int status, const char *what) {
    return status == 0 ? 0 : mgt_fail("%s failed: cuBLAS status %d", what, status);
}
}  // namespace

int mgt_fail(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(last_error, sizeof last_error, format, arguments);
    va_end(arguments);
    return 1;
}

int mgt_check(cudaError_t status, const char *what) {
    if (status == cudaSuccess) return 0;
    return mgt_fail("%s: %s (%s)", what, cudaGetErrorString(status), cudaGetErrorName(status));
}

int mgt_finish(const char *what) {
    if (mgt_check(cudaGetLastError(), what)) return 1;
    return synchronous ? mgt_check(cudaDeviceSynchronize(), what) : 0;
}

void *mgt_workspace(size_t bytes) {
    if (bytes <= workspace_bytes) return workspace;
    if (workspace) cudaFree(workspace);  // cudaFree waits for the work that may still use it
    workspace = nullptr;
    workspace_bytes = 0;
    if (mgt_check(cudaMalloc(&workspace, bytes), "cudaMalloc (workspace)")) return nullptr;
    workspace_bytes = bytes;
    return workspace;
}

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands.
int mgt_gemm_batched(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                     long long stride_a, const float *b, int ldb, long long stride_b, float beta, float *c, int ldc,
                     long long stride_c, int count) {
    if (m == 0 || n == 0) return 0;
    int status = count == 1
        ? cublas.sgemm(cublas.handle, trans_b ? kOpT : kOpN, trans_a ? kOpT : kOpN, n, m, k, &alpha, b, ldb, a, lda,
                       &beta, c, ldc)
        : cublas.sgemmBatched(cublas.handle, trans_b ? kOpT : kOpN, trans_a ? kOpT : kOpN, n, m, k, &alpha, b, ldb,
                              stride_b, a, lda, stride_a, &beta, c, ldc, stride_c, count);
    return cublas_check(status, "cublasSgemm");
}

int mgt_gemm_batched_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const uint16_t *a, int lda,
                          long long stride_a, const uint16_t *b, int ldb, long long stride_b, float beta, void *c,
                          int c_bf16, int ldc, long long stride_c, int count) {
    if (m == 0 || n == 0) return 0;
    int status = cublas.gemmStridedBatchedEx(cublas.handle, trans_b ? kOpT : kOpN, trans_a ? kOpT : kOpN, n, m, k,
                                             &alpha, b, kR16BF, ldb, stride_b, a, kR16BF, lda, stride_a, &beta, c,
                                             c_bf16 ? kR16BF : kR32F, ldc, stride_c, count, kCompute32F, kGemmDefault);
    return cublas_check(status, "cublasGemmStridedBatchedEx (bf16)");
}

extern "C" {

int mgt_abi_version(void) { return 3; }

const char *mgt_last_error(void) { return last_error; }

int mgt_device_count(int *count) {
    *count = 0;
    cudaError_t status = cudaGetDeviceCount(count);
    if (status == cudaErrorInsufficientDriver)
        return mgt_fail("no NVIDIA driver for CUDA 13 (libcuda.so.1 is missing or older than 580): %s",
                        cudaGetErrorString(status));
    if (status == cudaErrorNoDevice) return mgt_fail("the NVIDIA driver sees no GPU");
    return mgt_check(status, "cudaGetDeviceCount");
}

int mgt_init(int device, const char *cublas_path, char *name, int name_capacity) {
    int count = 0;
    if (mgt_device_count(&count)) return 1;
    if (device < 0 || device >= count) return mgt_fail("GPU %d requested but %d visible", device, count);
    if (mgt_check(cudaSetDevice(device), "cudaSetDevice")) return 1;
    cudaDeviceProp properties;
    if (mgt_check(cudaGetDeviceProperties(&properties, device), "cudaGetDeviceProperties")) return 1;
    snprintf(name, name_capacity, "%s (sm_%d%d, %d SMs, %.1f GiB)", properties.name, properties.major, properties.minor,
             properties.multiProcessorCount, properties.totalGlobalMem / 1073741824.0);
    if (cublas.handle) return 0;
    const char *path = cublas_path ? cublas_path : "libcublas.so.13";
    void *library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!library) return mgt_fail("cannot load cuBLAS (%s): %s; put its folder on LD_LIBRARY_PATH", path, dlerror());
    CreateFn create = (CreateFn)dlsym(library, "cublasCreate_v2");
    SetMathModeFn setMathMode = (SetMathModeFn)dlsym(library, "cublasSetMathMode");
    cublas.sgemm = (SgemmFn)dlsym(library, "cublasSgemm_v2");
    cublas.sgemmBatched = (SgemmBatchedFn)dlsym(library, "cublasSgemmStridedBatched");
    cublas.gemmEx = (GemmExFn)dlsym(library, "cublasGemmEx");
    cublas.gemmStridedBatchedEx = (GemmStridedBatchedExFn)dlsym(library, "cublasGemmStridedBatchedEx");
    cublas.sgemv = (SgemvFn)dlsym(library, "cublasSgemv_v2");
    if (!create || !setMathMode || !cublas.sgemm || !cublas.sgemmBatched || !cublas.gemmEx ||
        !cublas.gemmStridedBatchedEx || !cublas.sgemv)
        return mgt_fail("%s lacks a cuBLAS function this library needs", path);
    if (cublas_check(create(&cublas.handle), "cublasCreate")) return 1;
    // Default math: fp32 GEMMs stay fp32 (no TF32), so results match the CPU's.
    return cublas_check(setMathMode(cublas.handle, kDefaultMath), "cublasSetMathMode");
}

int mgt_memory_info(size_t *free_bytes, size_t *total_bytes) {
    return mgt_check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
}

int mgt_alloc(void **pointer, size_t bytes) {
    *pointer = nullptr;
    size_t free_bytes = 0, total_bytes = 0;
    if (mgt_memory_info(&free_bytes, &total_bytes)) return 1;
    // Managed memory past what the card has free can hang the GPU: refuse it up front.
    const size_t reserve = (size_t)512 << 20;
    if (bytes + reserve > free_bytes)
        return mgt_fail("out of GPU memory: cannot allocate %.2f GiB (%.2f GiB free of %.2f GiB)",
                        bytes / 1073741824.0, free_bytes / 1073741824.0, total_bytes / 1073741824.0);
    if (mgt_check(cudaMallocManaged(pointer, bytes < 256 ? 256 : bytes, cudaMemAttachGlobal), "cudaMallocManaged"))
        return 1;
    if (mgt_check(cudaMemset(*pointer, 0, bytes), "cudaMemset")) return 1;
    return mgt_synchronize();  // even when asynchronous: the host may write the buffer next
}

int mgt_free(void *pointer) { return mgt_check(cudaFree(pointer), "cudaFree"); }

int mgt_zero(void *pointer, size_t bytes) {
    if (mgt_check(cudaMemset(pointer, 0, bytes), "cudaMemset")) return 1;
    return mgt_finish("cudaMemset");
}

int mgt_copy(void *destination, const void *source, size_t bytes) {
    if (mgt_check(cudaMemcpy(destination, source, bytes, cudaMemcpyDefault), "cudaMemcpy")) return 1;
    return mgt_finish("cudaMemcpy");
}

int mgt_synchronize(void) {
    if (mgt_check(cudaGetLastError(), "cudaDeviceSynchronize")) return 1;
    return mgt_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

int mgt_set_synchronous(int value) {
    synchronous = value != 0;
    return 0;
}

int mgt_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
              int ldb, float beta, float *c, int ldc) {
    if (mgt_gemm_batched(trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1)) return 1;
    return mgt_finish("sgemm");
}

int mgt_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const uint16_t *a, int lda,
                  const uint16_t *b, int ldb, float beta, float *c, int ldc) {
    if (m == 0 || n == 0) return 0;
    int status = cublas.gemmEx(cublas.handle, trans_b ? kOpT : kOpN, trans_a ? kOpT : kOpN, n, m, k, &alpha, b, kR16BF,
                               ldb, a, kR16BF, lda, &beta, c, kR32F, ldc, kCompute32F, kGemmDefault);
    if (cublas_check(status, "cublasGemmEx (bf16)")) return 1;
    return mgt_finish("gemm_bf16");
}

// Row-major A [rows, cols] is column-major A^T [cols, rows]: the transposition flips.
int mgt_sgemv(int trans, int rows, int cols, float alpha, const float *a, int lda, const float *x, float beta,
              float *y) {
    int status = cublas.sgemv(cublas.handle, trans ? kOpN : kOpT, cols, rows, &alpha, a, lda, x, 1, &beta, y, 1);
    if (cublas_check(status, "cublasSgemv")) return 1;
    return mgt_finish("sgemv");
}

}  // extern "C"
