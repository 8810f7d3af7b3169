// Causal self-attention in bf16 (--bf16 on a GPU), as Megatron's core attention computes it:
// Q, K and V rounded to bf16, the scores (Q K^T, scaled) and their gradient dP as bf16 GEMM
// outputs, the softmax in fp32 from the bf16 scores into bf16 probabilities, dS rounded to bf16;
// every GEMM accumulates in fp32 on the tensor cores, and the log-sum-exp, the outputs and the
// gradients of Q, K and V are fp32. The [heads, t, t] matrices are bf16: half the traffic of
// softmax.cu's fp32 path.
#include "internal.h"

namespace {
/// Causal softmax of `rows` bf16 score rows of length `t` (row r is query r % t), in place: the
/// scores become bf16 probabilities (masked entries 0); saves each row's log-sum-exp. Every
/// read of a row ends before the block's last reduction, and every write comes after it.
__global__ void causal_softmax_bf16_kernel(uint16_t *scoresThenProbabilities, float *lse, int t) {
    __shared__ float shared[32];
    long row = blockIdx.x;
    int query = (int)(row % t);
    uint16_t *s = scoresThenProbabilities + row * t;
    float m = -INFINITY;
    for (int j = threadIdx.x; j <= query; j += blockDim.x) m = fmaxf(m, bf16_value(s[j]));
    m = mgt_block_max(m, shared);
    float sum = 0;
    for (int j = threadIdx.x; j <= query; j += blockDim.x) sum += expf(bf16_value(s[j]) - m);
    sum = mgt_block_sum(sum, shared);
    float inverse = 1.0f / sum;
    for (int j = threadIdx.x; j < t; j += blockDim.x)
        s[j] = j <= query ? bf16_bits(expf(bf16_value(s[j]) - m) * inverse) : 0;
    if (threadIdx.x == 0) lse[row] = m + logf(sum);
}

/// The bf16 probabilities again, in place of the bf16 scores, from the saved log-sum-exp.
__global__ void causal_probabilities_bf16_kernel(uint16_t *scoresThenProbabilities, const float *lse, int t) {
    long row = blockIdx.x;
    int query = (int)(row % t);
    uint16_t *s = scoresThenProbabilities + row * t;
    float l = lse[row];
    for (int j = threadIdx.x; j < t; j += blockDim.x) s[j] = j <= query ? bf16_bits(expf(bf16_value(s[j]) - l)) : 0;
}

/// dS = P * (dP - rowsum(dO * O)) in place of P (each entry read, then written, by one thread),
/// for the rows of one sequence's heads.
__global__ void softmax_backward_bf16_kernel(uint16_t *probabilitiesThenDScores, const uint16_t *dprobabilities,
                                             const float *dout, const float *out, int t, int channels, int headDim) {
    __shared__ float shared[32];
    long row = blockIdx.x;  // head * t + query
    int head = (int)(row / t), query = (int)(row % t);
    const float *dO = dout + (long)query * channels + head * headDim, *o = out + (long)query * channels + head * headDim;
    float delta = 0;
    for (int d = threadIdx.x; d < headDim; d += blockDim.x) delta += dO[d] * o[d];
    delta = mgt_block_sum(delta, shared);
    uint16_t *p = probabilitiesThenDScores + row * t;
    const uint16_t *dp = dprobabilities + row * t;
    for (int j = threadIdx.x; j < t; j += blockDim.x) p[j] = bf16_bits(bf16_value(p[j]) * (bf16_value(dp[j]) - delta));
}

int round_to_bf16(uint16_t *out, const float *inp, long count) {
    mgt_launch_bf16_round(out, inp, count);
    return mgt_check(cudaGetLastError(), "bf16 rounding (attention)");
}
}  // namespace

extern "C" {

// Per sequence: its Q, K and V rounded to bf16 once (rows of 3c, head h at columns h*3d), then
// the heads batched as in softmax.cu. Workspace: bf16 scores, then probabilities, [heads, t, t]
// and bf16 QKV [t, 3c].
int mgt_attention_forward_bf16(float *out, float *lse, const float *qkv, int batch, int t, int heads, int channels) {
    int d = channels / heads, ld = 3 * channels;
    float scale = 1.0f / sqrtf((float)d);
    long square = (long)t * t;
    size_t squareBytes = (size_t)heads * square * 2;
    char *workspace = (char *)mgt_workspace(squareBytes + (size_t)t * ld * 2);
    if (!workspace) return 1;
    uint16_t *scores = (uint16_t *)workspace, *q = (uint16_t *)(workspace + squareBytes);
    for (int b = 0; b < batch; b++) {
        if (round_to_bf16(q, qkv + (long)b * t * ld, (long)t * ld)) return 1;
        if (mgt_gemm_batched_bf16(0, 1, t, t, d, scale, q, ld, 3 * d, q + d, ld, 3 * d, 0, scores, 1, t, square, heads))
            return 1;
        causal_softmax_bf16_kernel<<<heads * t, MGT_ROW_THREADS>>>(scores, lse + (long)b * heads * t, t);
        if (mgt_gemm_batched_bf16(0, 0, t, d, t, 1, scores, t, square, q + 2 * d, ld, 3 * d, 0,
                                  out + (long)b * t * channels, 0, channels, d, heads))
            return 1;
    }
    return mgt_finish("attention_forward_bf16");
}

// Workspace: bf16 scores, then P, then dS [heads, t, t]; bf16 dP [heads, t, t]; bf16 QKV
// [t, 3c] and bf16 dO [t, c].
int mgt_attention_backward_bf16(float *dqkv, const float *dout, const float *out, const float *lse, const float *qkv,
                                int batch, int t, int heads, int channels) {
    int d = channels / heads, ld = 3 * channels;
    float scale = 1.0f / sqrtf((float)d);
    long square = (long)t * t;
    size_t squareBytes = (size_t)heads * square * 2, qkvBytes = (size_t)t * ld * 2;
    char *workspace = (char *)mgt_workspace(2 * squareBytes + qkvBytes + (size_t)t * channels * 2);
    if (!workspace) return 1;
    uint16_t *probabilities = (uint16_t *)workspace, *dprobabilities = (uint16_t *)(workspace + squareBytes);
    uint16_t *q = (uint16_t *)(workspace + 2 * squareBytes), *k = q + d, *v = q + 2 * d;
    uint16_t *dO16 = (uint16_t *)(workspace + 2 * squareBytes + qkvBytes);
    for (int b = 0; b < batch; b++) {
        const float *dO = dout + (long)b * t * channels, *o = out + (long)b * t * channels;
        float *dq = dqkv + (long)b * t * ld, *dk = dq + d, *dv = dq + 2 * d;
        if (round_to_bf16(q, qkv + (long)b * t * ld, (long)t * ld)) return 1;
        if (round_to_bf16(dO16, dO, (long)t * channels)) return 1;
        if (mgt_gemm_batched_bf16(0, 1, t, t, d, scale, q, ld, 3 * d, k, ld, 3 * d, 0, probabilities, 1, t, square,
                                  heads))
            return 1;
        causal_probabilities_bf16_kernel<<<heads * t, MGT_ROW_THREADS>>>(probabilities, lse + (long)b * heads * t, t);
        // dV = P^T dO; dP = dO V^T.
        if (mgt_gemm_batched_bf16(1, 0, t, d, t, 1, probabilities, t, square, dO16, channels, d, 0, dv, 0, ld, 3 * d,
                                  heads))
            return 1;
        if (mgt_gemm_batched_bf16(0, 1, t, t, d, 1, dO16, channels, d, v, ld, 3 * d, 0, dprobabilities, 1, t, square,
                                  heads))
            return 1;
        softmax_backward_bf16_kernel<<<heads * t, 128>>>(probabilities, dprobabilities, dO, o, t, channels, d);
        // dQ = scale dS K; dK = scale dS^T Q.
        if (mgt_gemm_batched_bf16(0, 0, t, d, t, scale, probabilities, t, square, k, ld, 3 * d, 0, dq, 0, ld, 3 * d,
                                  heads))
            return 1;
        if (mgt_gemm_batched_bf16(1, 0, t, d, t, scale, probabilities, t, square, q, ld, 3 * d, 0, dk, 0, ld, 3 * d,
                                  heads))
            return 1;
    }
    return mgt_finish("attention_backward_bf16");
}

}  // extern "C"
