// The C interface of libmegatron_cuda.so: the CUDA kernels and cuBLAS calls under megatron's
// Kernels module (Sources/Accelerator/CUDAAccelerator.swift loads it with dlopen).
//
// Conventions:
// - every function returns 0 on success, or a non-zero code with a message for
//   mgt_last_error();
// - matrices are row-major and pointers are device (or managed) memory unless said otherwise;
// - every call has finished when it returns (the work is synchronized on the default stream),
//   so the host may read managed memory right after; mgt_set_synchronous(0) lets calls return
//   once queued (then mgt_synchronize comes before the host reads).
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Version of this interface; the Swift side refuses a library of another version.
int mgt_abi_version(void);
/// The message of the last failed call on this thread.
const char *mgt_last_error(void);
/// Selects GPU `device`, loads cuBLAS (`cublas_path`, or libcublas.so.13 from the loader's
/// path when NULL) and creates its handle. Writes the GPU's name into `name`.
int mgt_init(int device, const char *cublas_path, char *name, int name_capacity);
/// Number of visible GPUs (0 when there is no driver or no GPU: then the error says why).
int mgt_device_count(int *count);
/// Free and total device memory in bytes.
int mgt_memory_info(size_t *free_bytes, size_t *total_bytes);

/// Managed (unified) memory of `bytes`, zeroed on the device.
int mgt_alloc(void **pointer, size_t bytes);
int mgt_free(void *pointer);
int mgt_zero(void *pointer, size_t bytes);
/// Copies between any two pointers (host, device or managed).
int mgt_copy(void *destination, const void *source, size_t bytes);
/// Waits for all work on the GPU.
int mgt_synchronize(void);
/// 1 (the default): every call waits for its work before returning. 0: calls return once their
/// work is queued on the default stream; the caller synchronizes before the host reads results.
int mgt_set_synchronous(int value);

/// C[M,N] = alpha op(A) op(B) + beta C, fp32 (no TF32), row-major.
int mgt_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
              const float *b, int ldb, float beta, float *c, int ldc);
/// The same with bf16 A and B (raw 16-bit patterns), fp32 C and fp32 accumulation.
int mgt_gemm_bf16(int trans_a, int trans_b, int m, int n, int k, float alpha, const uint16_t *a, int lda,
                  const uint16_t *b, int ldb, float beta, float *c, int ldc);
/// y[N] = alpha op(A) x + beta y for row-major A [rows, cols].
int mgt_sgemv(int trans, int rows, int cols, float alpha, const float *a, int lda, const float *x, float beta, float *y);

int mgt_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int rows, int channels, float eps);
/// Adds into dinp, dweight and dbias.
int mgt_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int rows, int channels);
/// exact: 0 tanh form, 1 erf form. backward writes dinp = gelu'(inp) * dout (dinp may be dout).
int mgt_gelu_forward(float *out, const float *inp, long count, int exact);
int mgt_gelu_backward(float *dinp, const float *inp, const float *dout, long count, int exact);
/// Every one of `rows` rows of `out` [rows, n] set to `row` (zeros when NULL).
int mgt_fill_rows(float *out, const float *row, int rows, int n);
/// out += inp.
int mgt_add_in_place(float *out, const float *inp, long count);
/// Round to nearest even (NaN stays NaN); widen is exact.
int mgt_bf16_round(uint16_t *out, const float *inp, long count);
int mgt_bf16_widen(float *out, const uint16_t *inp, long count);
int mgt_bf16_round_in_place(float *values, long count);

/// Token plus position embedding with a vocabulary shard [vocab_start, vocab_start + vocab_count);
/// wpe may be NULL. Backward adds into dwte (shard rows) and dwpe.
int mgt_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe, int batch,
                          int seq_length, int channels, long vocab_start, long vocab_count);
int mgt_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int batch,
                           int seq_length, int channels, long vocab_start, long vocab_count);

/// Row log-sum-exp over the first `valid` columns and loss (0 where target == ignore_index).
int mgt_cross_entropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int rows,
                              int vocab, int valid, int ignore_index);
/// In place: logits become (softmax - onehot) * weight * scale, zero past `valid`.
int mgt_cross_entropy_backward(float *logits, const float *lse, const int32_t *targets, const float *loss_mask,
                               float scale, int rows, int vocab, long vocab_start, int valid, int ignore_index);

/// Causal attention over fused per-head [q k v] rows (see Sources/Kernels/Attention.swift).
int mgt_attention_forward(float *out, float *lse, const float *qkv, int batch, int seq_length, int heads, int channels);
/// Overwrites dqkv.
int mgt_attention_backward(float *dqkv, const float *dout, const float *out, const float *lse, const float *qkv,
                           int batch, int seq_length, int heads, int channels);

/// The same in bf16 as Megatron's core attention: bf16 Q, K, V, scores, probabilities, dO, dP
/// and dS, fp32 accumulation, the softmax computed in fp32; log-sum-exp and results in fp32
/// (cuda/attention_bf16.cu).
int mgt_attention_forward_bf16(float *out, float *lse, const float *qkv, int batch, int seq_length, int heads,
                               int channels);
int mgt_attention_backward_bf16(float *dqkv, const float *dout, const float *out, const float *lse, const float *qkv,
                                int batch, int seq_length, int heads, int channels);

/// One AdamW step over `count` values; the host computes the bias corrections.
int mgt_adamw(float *params, const float *grads, float *m, float *v, long count, float beta1, float beta2,
              float epsilon, float step_size, float inverse_sqrt_correction2, float shrink, float grad_scale);
/// Sum of squares in double precision.
int mgt_sum_of_squares(const float *values, long count, double *result);

#ifdef __cplusplus
}
#endif
