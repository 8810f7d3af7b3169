// Shared by the .cu files of libmegatron_cuda.so: error reporting, the device workspace,
// cuBLAS entry points (loaded with dlopen, so building needs no cuBLAS) and block reductions.
#pragma once
#include <cuda_runtime.h>
#include "megatron_cuda.h"

/// Records `message` as this thread's last error and returns 1.
int mgt_fail(const char *format, ...);
/// 0, or the failure of a CUDA runtime call named `what`.
int mgt_check(cudaError_t status, const char *what);
/// Checks the launches since the last call and waits for them (see megatron_cuda.h).
int mgt_finish(const char *what);
/// Device scratch of at least `bytes` bytes, valid until the next call; NULL after mgt_fail.
void *mgt_workspace(size_t bytes);

/// Row-major GEMMs through cuBLAS (fp32, no TF32); strided batched when count > 1.
int mgt_gemm_batched(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                     long long stride_a, const float *b, int ldb, long long stride_b, float beta, float *c, int ldc,
                     long long stride_c, int count);

/// Row-major bf16 GEMMs (raw 16-bit patterns) with fp32 accumulation into C, which is fp32, or
/// bf16 when `c_bf16`; strided batched when count > 1.
int mgt_gemm_batched_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const uint16_t *a, int lda,
                          long long stride_a, const uint16_t *b, int ldb, long long stride_b, float beta, void *c,
                          int c_bf16, int ldc, long long stride_c, int count);

/// Queues the bf16 rounding of `count` values (four per thread where the pointers allow)
/// without waiting; `mgt_bf16_round` and the bf16 attention's operand copies use it.
void mgt_launch_bf16_round(uint16_t *out, const float *inp, long count);

/// Round to nearest even; a NaN keeps its upper bits, made quiet (as BFloat16.round in Swift).
__device__ inline uint16_t bf16_bits(float value) {
    uint32_t bits = __float_as_uint(value);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x0040u);
    return (uint16_t)((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/// The fp32 value of bf16 bits (exact).
__device__ inline float bf16_value(uint16_t bits) { return __uint_as_float((uint32_t)bits << 16); }

/// Blocks of this many threads for row kernels.
#define MGT_ROW_THREADS 256

/// Sum over the block (every thread gets it); `shared` holds 32 floats.
template <typename T>
__device__ inline T mgt_block_sum(T value, T *shared) {
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();
    if (lane == 0) shared[warp] = value;
    __syncthreads();
    int warps = (blockDim.x + 31) / 32;
    value = lane < warps ? shared[lane] : T(0);
    for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffff, value, offset);
    return value;
}

/// Maximum over the block (every thread gets it); `shared` holds 32 floats.
__device__ inline float mgt_block_max(float value, float *shared) {
    for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffff, value, offset));
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __syncthreads();
    if (lane == 0) shared[warp] = value;
    __syncthreads();
    int warps = (blockDim.x + 31) / 32;
    value = lane < warps ? shared[lane] : -INFINITY;
    for (int offset = 16; offset > 0; offset /= 2) value = fmaxf(value, __shfl_xor_sync(0xffffffff, value, offset));
    return value;
}

/// Whether `pointer` is a multiple of `bytes` (the vectorized kernels' condition).
inline bool mgt_aligned(const void *pointer, size_t bytes) { return ((size_t)pointer & (bytes - 1)) == 0; }

/// Blocks for `count` elements at `threads` per block (grid-stride loops cover the rest).
inline int mgt_blocks(long count, int threads) {
    long blocks = (count + threads - 1) / threads;
    return (int)(blocks < 1 ? 1 : (blocks > 65535L * 8 ? 65535L * 8 : blocks));
}
