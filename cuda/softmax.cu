// Cross-entropy over the vocabulary and causal self-attention (softmax between two cuBLAS
// batched GEMMs, the probabilities recomputed in the backward from the saved log-sum-exp).
#include "internal.h"

namespace {
__global__ void cross_entropy_forward_kernel(float *losses, float *lse, const float *logits, const int32_t *targets,
                                             int vocab, int valid, int ignoreIndex) {
    __shared__ float shared[32];
    long row = blockIdx.x;
    const float *x = logits + row * vocab;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < valid; i += blockDim.x) m = fmaxf(m, x[i]);
    m = mgt_block_max(m, shared);
    float sum = 0;
    for (int i = threadIdx.x; i < valid; i += blockDim.x) sum += expf(x[i] - m);
    sum = mgt_block_sum(sum, shared);
    if (threadIdx.x == 0) {
        float l = m + logf(sum);
        lse[row] = l;
        int target = targets[row];
        losses[row] = target == ignoreIndex ? 0.0f : l - x[target];
    }
}

__global__ void cross_entropy_backward_kernel(float *logits, const float *lse, const int32_t *targets,
                                              const float *lossMask, float scale, int vocab, long vocabStart,
                                              int valid, int ignoreIndex) {
    long row = blockIdx.x;
    float *x = logits + row * vocab;
    int target = targets[row];
    float w = target == ignoreIndex ? 0.0f : (lossMask ? lossMask[row] : 1.0f) * scale;
    float l = lse[row];
    long local = (long)target - vocabStart;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
        float g = (w == 0.0f || i >= valid) ? 0.0f : expf(x[i] - l) * w;
        if (w != 0.0f && i == local) g -= w;
        x[i] = g;
    }
}

/// Causal softmax of `rows` score rows of length `t` in place (row r is query r % t), saving
/// each row's log-sum-exp; masked entries become 0.
__global__ void causal_softmax_kernel(float *scores, float *lse, int t) {
    __shared__ float shared[32];
    long row = blockIdx.x;
    int query = (int)(row % t);
    float *s = scores + row * t;
    float m = -INFINITY;
    for (int j = threadIdx.x; j <= query; j += blockDim.x) m = fmaxf(m, s[j]);
    m = mgt_block_max(m, shared);
    float sum = 0;
    for (int j = threadIdx.x; j <= query; j += blockDim.x) sum += expf(s[j] - m);
    sum = mgt_block_sum(sum, shared);
    float inverse = 1.0f / sum;
    for (int j = threadIdx.x; j < t; j += blockDim.x) s[j] = j <= query ? expf(s[j] - m) * inverse : 0.0f;
    if (threadIdx.x == 0) lse[row] = m + logf(sum);
}

/// Probabilities again from scores and the saved log-sum-exp (masked entries 0).
__global__ void causal_probabilities_kernel(float *scores, const float *lse, int t) {
    long row = blockIdx.x;
    int query = (int)(row % t);
    float *s = scores + row * t;
    float l = lse[row];
    for (int j = threadIdx.x; j < t; j += blockDim.x) s[j] = j <= query ? expf(s[j] - l) : 0.0f;
}

/// dS = P * (dP - rowsum(dO * O)) in place of dP, for the rows of one sequence's heads.
__global__ void softmax_backward_kernel(float *dscores, const float *probabilities, const float *dout,
                                        const float *out, int t, int channels, int headDim) {
    __shared__ float shared[32];
    long row = blockIdx.x;  // head * t + query
    int head = (int)(row / t), query = (int)(row % t);
    const float *dO = dout + (long)query * channels + head * headDim, *o = out + (long)query * channels + head * headDim;
    float delta = 0;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) delta += dO[d] * o[d];
    delta = mgt_block_sum(delta, shared);
    float *ds = dscores + row * t;
    const float *p = probabilities + row * t;
    for (int j = threadIdx.x; j < t; j += blockDim.x) ds[j] = p[j] * (ds[j] - delta);
}
}  // namespace

extern "C" {

int mgt_cross_entropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int rows,
                              int vocab, int valid, int ignore_index) {
    if (rows == 0) return 0;
    cross_entropy_forward_kernel<<<rows, MGT_ROW_THREADS>>>(losses, lse, logits, targets, vocab, valid, ignore_index);
    return mgt_finish("cross_entropy_forward");
}

int mgt_cross_entropy_backward(float *logits, const float *lse, const int32_t *targets, const float *loss_mask,
                               float scale, int rows, int vocab, long vocab_start, int valid, int ignore_index) {
    if (rows == 0) return 0;
    cross_entropy_backward_kernel<<<rows, MGT_ROW_THREADS>>>(logits, lse, targets, loss_mask, scale, vocab, vocab_start,
                                                             valid, ignore_index);
    return mgt_finish("cross_entropy_backward");
}

// One sequence at a time, its heads batched: head h's q, k and v are columns h*3d, h*3d + d and
// h*3d + 2d of rows 3c apart; its output columns h*d of rows c apart.
int mgt_attention_forward(float *out, float *lse, const float *qkv, int batch, int t, int heads, int channels) {
    int d = channels / heads, ld = 3 * channels;
    float scale = 1.0f / sqrtf((float)d);
    long square = (long)t * t;
    float *scores = (float *)mgt_workspace((size_t)heads * square * sizeof(float));
    if (!scores) return 1;
    for (int b = 0; b < batch; b++) {
        const float *q = qkv + (long)b * t * ld;
        if (mgt_gemm_batched(0, 1, t, t, d, scale, q, ld, 3 * d, q + d, ld, 3 * d, 0, scores, t, square, heads)) return 1;
        causal_softmax_kernel<<<heads * t, MGT_ROW_THREADS>>>(scores, lse + (long)b * heads * t, t);
        if (mgt_gemm_batched(0, 0, t, d, t, 1, scores, t, square, q + 2 * d, ld, 3 * d, 0, out + (long)b * t * channels,
                             channels, d, heads))
            return 1;
    }
    return mgt_finish("attention_forward");
}

int mgt_attention_backward(float *dqkv, const float *dout, const float *out, const float *lse, const float *qkv,
                           int batch, int t, int heads, int channels) {
    int d = channels / heads, ld = 3 * channels;
    float scale = 1.0f / sqrtf((float)d);
    long square = (long)t * t;
    float *probabilities = (float *)mgt_workspace((size_t)2 * heads * square * sizeof(float));
    if (!probabilities) return 1;
    float *dscores = probabilities + heads * square;
    for (int b = 0; b < batch; b++) {
        const float *q = qkv + (long)b * t * ld, *k = q + d, *v = q + 2 * d;
        const float *dO = dout + (long)b * t * channels, *o = out + (long)b * t * channels;
        float *dq = dqkv + (long)b * t * ld, *dk = dq + d, *dv = dq + 2 * d;
        if (mgt_gemm_batched(0, 1, t, t, d, scale, q, ld, 3 * d, k, ld, 3 * d, 0, probabilities, t, square, heads))
            return 1;
        causal_probabilities_kernel<<<heads * t, MGT_ROW_THREADS>>>(probabilities, lse + (long)b * heads * t, t);
        // dV = P^T dO; dP = dO V^T.
        if (mgt_gemm_batched(1, 0, t, d, t, 1, probabilities, t, square, dO, channels, d, 0, dv, ld, 3 * d, heads))
            return 1;
        if (mgt_gemm_batched(0, 1, t, t, d, 1, dO, channels, d, v, ld, 3 * d, 0, dscores, t, square, heads)) return 1;
        softmax_backward_kernel<<<heads * t, 128>>>(dscores, probabilities, dO, o, t, channels, d);
        // dQ = scale dS K; dK = scale dS^T Q.
        if (mgt_gemm_batched(0, 0, t, d, t, scale, dscores, t, square, k, ld, 3 * d, 0, dq, ld, 3 * d, heads)) return 1;
        if (mgt_gemm_batched(1, 0, t, d, t, scale, dscores, t, square, q, ld, 3 * d, 0, dk, ld, 3 * d, heads)) return 1;
    }
    return mgt_finish("attention_backward");
}

}  // extern "C"
