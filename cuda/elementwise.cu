// LayerNorm, GELU, residual, bf16 conversion, embedding, AdamW and the gradient norm's sum of
// squares: the same arithmetic as the Swift kernels of the same names (Sources/Kernels).
#include "internal.h"

namespace {
const float kSqrt2OverPi = 0.7978845608028654f, kGeluCubic = 0.044715f;
const float kInverseSqrt2 = 0.7071067811865475f, kInverseSqrt2Pi = 0.3989422804014327f;

__global__ void layernorm_forward_kernel(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                         const float *bias, int channels, float eps) {
    __shared__ float shared[32];
    const float *x = inp + (long)blockIdx.x * channels;
    float sum = 0;
    for (int i = threadIdx.x; i < channels; i += blockDim.x) sum += x[i];
    float mu = mgt_block_sum(sum, shared) / channels;
    float squares = 0;  // two passes, as the CPU kernel
    for (int i = threadIdx.x; i < channels; i += blockDim.x) squares += (x[i] - mu) * (x[i] - mu);
    float s = 1.0f / sqrtf(mgt_block_sum(squares, shared) / channels + eps);
    float *y = out + (long)blockIdx.x * channels;
    for (int i = threadIdx.x; i < channels; i += blockDim.x) y[i] = (x[i] - mu) * s * weight[i] + bias[i];
    if (threadIdx.x == 0) { mean[blockIdx.x] = mu; rstd[blockIdx.x] = s; }
}

__global__ void layernorm_input_gradient_kernel(float *dinp, const float *dout, const float *inp, const float *weight,
                                                const float *mean, const float *rstd, int channels) {
    __shared__ float shared[32];
    long row = blockIdx.x;
    const float *x = inp + row * channels, *g = dout + row * channels;
    float mu = mean[row], s = rstd[row];
    float sum = 0, sumNorm = 0;
    for (int i = threadIdx.x; i < channels; i += blockDim.x) {
        float dnorm = weight[i] * g[i];
        sum += dnorm;
        sumNorm += dnorm * (x[i] - mu) * s;
    }
    float meanD = mgt_block_sum(sum, shared) / channels;
    float meanDN = mgt_block_sum(sumNorm, shared) / channels;
    float *dx = dinp + row * channels;
    for (int i = threadIdx.x; i < channels; i += blockDim.x) {
        float norm = (x[i] - mu) * s;
        dx[i] += (weight[i] * g[i] - meanD - norm * meanDN) * s;
    }
}

/// Partial weight and bias gradients of `rowsPerChunk` rows: partial[chunk][0..c) and [c..2c).
__global__ void layernorm_parameter_partials_kernel(float *partial, const float *dout, const float *inp,
                                                    const float *mean, const float *rstd, int rows, int channels,
                                                    int rowsPerChunk) {
    __shared__ float sharedW[8][33], sharedB[8][33];
    int column = blockIdx.x * 32 + threadIdx.x;
    int first = blockIdx.y * rowsPerChunk, last = min(rows, first + rowsPerChunk);
    float dw = 0, db = 0;
    if (column < channels) {
        for (int row = first + threadIdx.y; row < last; row += 8) {
            float g = dout[(long)row * channels + column];
            dw += (inp[(long)row * channels + column] - mean[row]) * rstd[row] * g;
            db += g;
        }
    }
    sharedW[threadIdx.y][threadIdx.x] = dw;
    sharedB[threadIdx.y][threadIdx.x] = db;
    __syncthreads();
    if (threadIdx.y == 0 && column < channels) {
        for (int j = 1; j < 8; j++) { dw += sharedW[j][threadIdx.x]; db += sharedB[j][threadIdx.x]; }
        partial[(long)blockIdx.y * 2 * channels + column] = dw;
        partial[(long)blockIdx.y * 2 * channels + channels + column] = db;
    }
}

__global__ void layernorm_parameter_sum_kernel(float *dweight, float *dbias, const float *partial, int chunks,
                                               int channels) {
    int column = blockIdx.x * blockDim.x + threadIdx.x;
    if (column >= channels) return;
    float dw = 0, db = 0;
    for (int chunk = 0; chunk < chunks; chunk++) {  // a fixed order: the same sums every run
        dw += partial[(long)chunk * 2 * channels + column];
        db += partial[(long)chunk * 2 * channels + channels + column];
    }
    dweight[column] += dw;
    dbias[column] += db;
}

__device__ inline float gelu_value(float x, int exact) {
    if (exact) return 0.5f * x * (1.0f + erff(x * kInverseSqrt2));
    return 0.5f * x * (1.0f + tanhf(kSqrt2OverPi * (x + kGeluCubic * x * x * x)));
}

__device__ inline float gelu_derivative(float x, int exact) {
    if (exact) return 0.5f * (1.0f + erff(x * kInverseSqrt2)) + x * expf(-0.5f * x * x) * kInverseSqrt2Pi;
    float x2 = x * x;
    float t = tanhf(kSqrt2OverPi * (x + kGeluCubic * x2 * x));
    float dinner = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x2);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * dinner;
}

__global__ void gelu_forward_kernel(float *out, const float *inp, long count, int exact) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x)
        out[i] = gelu_value(inp[i], exact);
}

__global__ void gelu_backward_kernel(float *dinp, const float *inp, const float *dout, long count, int exact) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x)
        dinp[i] = gelu_derivative(inp[i], exact) * dout[i];
}

/// Columns over x, rows over y (no index division).
__global__ void fill_rows_kernel(float *out, const float *row, int rows, int n) {
    int column = blockIdx.x * blockDim.x + threadIdx.x;
    if (column >= n) return;
    float value = row ? row[column] : 0.0f;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) out[(long)r * n + column] = value;
}

__global__ void add_kernel(float *out, const float *inp, long count) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x)
        out[i] += inp[i];
}

/// `out += inp` four floats per thread (both 16-byte aligned); the caller does the tail.
__global__ void add4_kernel(float4 *out, const float4 *inp, long groups) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < groups; i += (long)gridDim.x * blockDim.x) {
        float4 a = out[i], b = inp[i];
        out[i] = make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
    }
}

__global__ void bf16_round_kernel(uint16_t *out, const float *inp, long count) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x)
        out[i] = bf16_bits(inp[i]);
}

/// Four values per thread: `inp` 16-byte and `out` 8-byte aligned; the caller does the tail.
__global__ void bf16_round4_kernel(ushort4 *out, const float4 *inp, long groups) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < groups; i += (long)gridDim.x * blockDim.x) {
        float4 x = inp[i];
        out[i] = make_ushort4(bf16_bits(x.x), bf16_bits(x.y), bf16_bits(x.z), bf16_bits(x.w));
    }
}

__global__ void bf16_widen4_kernel(float4 *out, const ushort4 *inp, long groups) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < groups; i += (long)gridDim.x * blockDim.x) {
        ushort4 x = inp[i];
        out[i] = make_float4(bf16_value(x.x), bf16_value(x.y), bf16_value(x.z), bf16_value(x.w));
    }
}

__global__ void bf16_round_in_place4_kernel(float4 *values, long groups) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < groups; i += (long)gridDim.x * blockDim.x) {
        float4 x = values[i];
        values[i] = make_float4(bf16_value(bf16_bits(x.x)), bf16_value(bf16_bits(x.y)), bf16_value(bf16_bits(x.z)),
                                bf16_value(bf16_bits(x.w)));
    }
}

__global__ void bf16_widen_kernel(float *out, const uint16_t *inp, long count) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x)
        out[i] = __uint_as_float((uint32_t)inp[i] << 16);
}

__global__ void bf16_round_in_place_kernel(float *values, long count) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x)
        values[i] = __uint_as_float((uint32_t)bf16_bits(values[i]) << 16);
}

__global__ void embedding_forward_kernel(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                                         int rows, int seqLength, int channels, long vocabStart, long vocabCount) {
    long total = (long)rows * channels;
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < total; e += (long)gridDim.x * blockDim.x) {
        long n = e / channels;
        int i = (int)(e % channels);
        long local = (long)tokens[n] - vocabStart;
        float position = wpe ? wpe[(n % seqLength) * channels + i] : 0.0f;
        out[e] = (local < 0 || local >= vocabCount) ? position : wte[local * channels + i] + position;
    }
}

__global__ void embedding_token_gradient_kernel(float *dwte, const float *dout, const int32_t *tokens, int rows,
                                                int channels, long vocabStart, long vocabCount) {
    long total = (long)rows * channels;
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < total; e += (long)gridDim.x * blockDim.x) {
        long n = e / channels;
        long local = (long)tokens[n] - vocabStart;
        if (local >= 0 && local < vocabCount) atomicAdd(&dwte[local * channels + e % channels], dout[e]);
    }
}

__global__ void embedding_position_gradient_kernel(float *dwpe, const float *dout, int batch, int seqLength,
                                                   int channels) {
    long total = (long)seqLength * channels;
    for (long e = blockIdx.x * (long)blockDim.x + threadIdx.x; e < total; e += (long)gridDim.x * blockDim.x) {
        float sum = 0;
        for (int b = 0; b < batch; b++) sum += dout[(long)b * total + e];
        dwpe[e] += sum;
    }
}

__global__ void adamw_kernel(float *params, const float *grads, float *m, float *v, long count, float beta1,
                             float beta2, float epsilon, float stepSize, float inverseSqrtCorrection2, float shrink,
                             float gradScale) {
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x) {
        float g = grads[i] * gradScale;
        float mi = beta1 * m[i] + (1 - beta1) * g;
        float vi = beta2 * v[i] + (1 - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] = params[i] * shrink - stepSize * mi / (sqrtf(vi) * inverseSqrtCorrection2 + epsilon);
    }
}

const int kSquareBlocks = 512;

__global__ void sum_of_squares_kernel(double *partial, const float *values, long count) {
    __shared__ double shared[32];
    double sum = 0;
    for (long i = blockIdx.x * (long)blockDim.x + threadIdx.x; i < count; i += (long)gridDim.x * blockDim.x)
        sum += (double)values[i] * values[i];
    sum = mgt_block_sum(sum, shared);
    if (threadIdx.x == 0) partial[blockIdx.x] = sum;
}

__global__ void sum_partials_kernel(double *result, const double *partial, int count) {
    __shared__ double shared[32];
    double sum = 0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partial[i];
    sum = mgt_block_sum(sum, shared);
    if (threadIdx.x == 0) *result = sum;
}
}  // namespace

void mgt_launch_bf16_round(uint16_t *out, const float *inp, long count) {
    long head = 0;
    if (mgt_aligned(out, 8) && mgt_aligned(inp, 16)) {
        head = count / 4 * 4;
        if (head) bf16_round4_kernel<<<mgt_blocks(head / 4, 256), 256>>>((ushort4 *)out, (const float4 *)inp, head / 4);
    }
    if (count > head) bf16_round_kernel<<<mgt_blocks(count - head, 256), 256>>>(out + head, inp + head, count - head);
}

extern "C" {

int mgt_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int rows, int channels, float eps) {
    if (rows == 0) return 0;
    layernorm_forward_kernel<<<rows, MGT_ROW_THREADS>>>(out, mean, rstd, inp, weight, bias, channels, eps);
    return mgt_finish("layernorm_forward");
}

int mgt_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int rows, int channels) {
    if (rows == 0) return 0;
    layernorm_input_gradient_kernel<<<rows, MGT_ROW_THREADS>>>(dinp, dout, inp, weight, mean, rstd, channels);
    const int rowsPerChunk = 256;
    int chunks = (rows + rowsPerChunk - 1) / rowsPerChunk;
    float *partial = (float *)mgt_workspace((size_t)chunks * 2 * channels * sizeof(float));
    if (!partial) return 1;
    dim3 grid((channels + 31) / 32, chunks), block(32, 8);
    layernorm_parameter_partials_kernel<<<grid, block>>>(partial, dout, inp, mean, rstd, rows, channels, rowsPerChunk);
    layernorm_parameter_sum_kernel<<<(channels + 255) / 256, 256>>>(dweight, dbias, partial, chunks, channels);
    return mgt_finish("layernorm_backward");
}

int mgt_gelu_forward(float *out, const float *inp, long count, int exact) {
    if (count == 0) return 0;
    gelu_forward_kernel<<<mgt_blocks(count, 256), 256>>>(out, inp, count, exact);
    return mgt_finish("gelu_forward");
}

int mgt_gelu_backward(float *dinp, const float *inp, const float *dout, long count, int exact) {
    if (count == 0) return 0;
    gelu_backward_kernel<<<mgt_blocks(count, 256), 256>>>(dinp, inp, dout, count, exact);
    return mgt_finish("gelu_backward");
}

int mgt_fill_rows(float *out, const float *row, int rows, int n) {
    if (rows == 0 || n == 0) return 0;
    dim3 grid((n + 255) / 256, rows < 65535 ? rows : 65535);
    fill_rows_kernel<<<grid, 256>>>(out, row, rows, n);
    return mgt_finish("fill_rows");
}

int mgt_add_in_place(float *out, const float *inp, long count) {
    if (count == 0) return 0;
    long head = 0;
    if (mgt_aligned(out, 16) && mgt_aligned(inp, 16)) {
        head = count / 4 * 4;
        if (head) add4_kernel<<<mgt_blocks(head / 4, 256), 256>>>((float4 *)out, (const float4 *)inp, head / 4);
    }
    if (count > head) add_kernel<<<mgt_blocks(count - head, 256), 256>>>(out + head, inp + head, count - head);
    return mgt_finish("add_in_place");
}

int mgt_bf16_round(uint16_t *out, const float *inp, long count) {
    if (count == 0) return 0;
    mgt_launch_bf16_round(out, inp, count);
    return mgt_finish("bf16_round");
}

int mgt_bf16_widen(float *out, const uint16_t *inp, long count) {
    if (count == 0) return 0;
    long head = 0;
    if (mgt_aligned(out, 16) && mgt_aligned(inp, 8)) {
        head = count / 4 * 4;
        if (head) bf16_widen4_kernel<<<mgt_blocks(head / 4, 256), 256>>>((float4 *)out, (const ushort4 *)inp, head / 4);
    }
    if (count > head) bf16_widen_kernel<<<mgt_blocks(count - head, 256), 256>>>(out + head, inp + head, count - head);
    return mgt_finish("bf16_widen");
}

int mgt_bf16_round_in_place(float *values, long count) {
    if (count == 0) return 0;
    long head = 0;
    if (mgt_aligned(values, 16)) {
        head = count / 4 * 4;
        if (head) bf16_round_in_place4_kernel<<<mgt_blocks(head / 4, 256), 256>>>((float4 *)values, head / 4);
    }
    if (count > head) bf16_round_in_place_kernel<<<mgt_blocks(count - head, 256), 256>>>(values + head, count - head);
    return mgt_finish("bf16_round_in_place");
}

int mgt_embedding_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe, int batch,
                          int seq_length, int channels, long vocab_start, long vocab_count) {
    long total = (long)batch * seq_length * channels;
    if (total == 0) return 0;
    embedding_forward_kernel<<<mgt_blocks(total, 256), 256>>>(out, tokens, wte, wpe, batch * seq_length, seq_length,
                                                              channels, vocab_start, vocab_count);
    return mgt_finish("embedding_forward");
}

int mgt_embedding_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens, int batch,
                           int seq_length, int channels, long vocab_start, long vocab_count) {
    long total = (long)batch * seq_length * channels;
    if (total == 0) return 0;
    embedding_token_gradient_kernel<<<mgt_blocks(total, 256), 256>>>(dwte, dout, tokens, batch * seq_length, channels,
                                                                     vocab_start, vocab_count);
    long positions = (long)seq_length * channels;
    embedding_position_gradient_kernel<<<mgt_blocks(positions, 256), 256>>>(dwpe, dout, batch, seq_length, channels);
    return mgt_finish("embedding_backward");
}

int mgt_adamw(float *params, const float *grads, float *m, float *v, long count, float beta1, float beta2,
              float epsilon, float step_size, float inverse_sqrt_correction2, float shrink, float grad_scale) {
    if (count == 0) return 0;
    adamw_kernel<<<mgt_blocks(count, 256), 256>>>(params, grads, m, v, count, beta1, beta2, epsilon, step_size,
                                                  inverse_sqrt_correction2, shrink, grad_scale);
    return mgt_finish("adamw");
}

int mgt_sum_of_squares(const float *values, long count, double *result) {
    *result = 0;
    if (count == 0) return 0;
    double *partial = (double *)mgt_workspace((kSquareBlocks + 1) * sizeof(double));
    if (!partial) return 1;
    sum_of_squares_kernel<<<kSquareBlocks, 256>>>(partial, values, count);
    sum_partials_kernel<<<1, 256>>>(partial + kSquareBlocks, partial, kSquareBlocks);
    if (mgt_check(cudaMemcpy(result, partial + kSquareBlocks, sizeof(double), cudaMemcpyDeviceToHost), "cudaMemcpy"))
        return 1;
    return mgt_finish("sum_of_squares");
}

}  // extern "C"
