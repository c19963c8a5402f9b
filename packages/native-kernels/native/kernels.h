// Convolutions and matrix products on float32 buffers, for training on the CPU.
// Layouts follow TensorFlow.js: images NHWC, filters [kh, kw, in, out], row-major matrices.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace dck {

// Geometry of a 2-D convolution. `pad_top`/`pad_left` are the zero rows/columns before the input;
// the output size fixes how many the convolution reads after it.
struct ConvGeometry {
  int batch, in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int k_h, k_w;
  int stride_h, stride_w;
  int dilation_h, dilation_w;
  int pad_top, pad_left;
};

// Runs `body(i)` for i in [0, count) on the pool's threads (the caller's thread among them).
void parallel_for(int count, const std::function<void(int)>& body);
void set_threads(int threads);
int threads();
const char* isa();

// out = conv(x, filter) (+ bias) (then ReLU when `relu`).
void conv2d(const ConvGeometry& g, const float* x, const float* filter, const float* bias, bool relu, float* out);
// dx = gradient of the convolution with respect to its input, given dy.
void conv2d_input_gradient(const ConvGeometry& g, const float* dy, const float* filter, float* dx);
// dfilter = gradient with respect to the filter, given the input x and dy.
void conv2d_filter_gradient(const ConvGeometry& g, const float* x, const float* dy, float* dfilter);
// out[b] = op(a[b]) op(b[b]) for `batch` products of [m, k] x [k, n]; a batch stride of 0 repeats one operand.
void matmul(int batch, int m, int n, int k, const float* a, std::ptrdiff_t a_batch_stride, bool transpose_a, const float* b,
            std::ptrdiff_t b_batch_stride, bool transpose_b, float* out);

// One SGD step over `size` values: d = g + weight_decay * w, v' = momentum * v + d (d where v is
// null), w' = w - learning_rate * v', each product and sum rounded to float on its own, as separate
// tensor ops would round them.
void sgd_update(std::ptrdiff_t size, const float* w, const float* g, const float* v, float learning_rate, float momentum, float weight_decay, float* w_out,
                float* v_out);

// out = (x - mean) / sqrt(variance + epsilon) * scale + offset over rows of `channels` values, then
// ReLU when `relu`; any of mean, variance, offset, scale may be null (0, 1, 0, 1).
void batch_norm(std::ptrdiff_t rows, int channels, const float* x, const float* mean, const float* variance, const float* offset,
                const float* scale, float epsilon, float* out, bool relu = false);
// out[c] = sum (or mean when `mean`) over r of x[r * columns + c].
void reduce_rows(std::ptrdiff_t rows, std::ptrdiff_t columns, const float* x, bool mean, float* out);
// out[r] = max over c of x[r * columns + c] (NaN when a value is NaN).
void max_columns(std::ptrdiff_t rows, int columns, const float* x, float* out);
// out = softmax over each row of `columns` values.
void softmax_rows(std::ptrdiff_t rows, int columns, const float* x, float* out);
// dst[r * dst_stride + j] = src[r * src_stride + j] for r < rows, j < width.
void copy_rows(std::ptrdiff_t rows, std::ptrdiff_t width, const float* src, std::ptrdiff_t src_stride, float* dst, std::ptrdiff_t dst_stride);
// out[r, c] = x[r, c] + v[c] over a [rows, columns] matrix (a bias added to every row).
void add_row_vector(std::ptrdiff_t rows, int columns, const float* x, const float* v, float* out);
// Max pooling (out_c = in_c): each output the largest value of its window, padding never (the first
// value above all before it, as the gradient picks it; NaN never is; -inf for a window of padding).
void max_pool(const ConvGeometry& g, const float* x, float* out);
// Gradient of max pooling (NHWC): dy goes to the first maximum of each window, in row-major order.
void max_pool_gradient(const ConvGeometry& g, const float* x, const float* dy, float* dx);

// Bilinear resizing with half-pixel centres (PyTorch's align_corners=False) of x [batch, in_h, in_w,
// channels] to out [batch, out_h, out_w, channels]: the rows first, then the columns, each output a
// sum of (at most) two taps in index order, the weights as core's bilinearMatrix computes them.
void resize_bilinear(int batch, int in_h, int in_w, int channels, int out_h, int out_w, const float* x, float* out);
// Its gradient: dx [batch, in_h, in_w, channels] from dy [batch, out_h, out_w, channels], each
// output's gradient spread back on the taps that made it.
void resize_bilinear_gradient(int batch, int in_h, int in_w, int channels, int out_h, int out_w, const float* dy, float* dx);


// The softmax terms of the DropClass objective over rows of `classes` logits: p = softmax of each row;
// losses[0] = mean of -log p[label] over the rows counted (0 when none), losses[1] = mean over all
// rows of p[suppressed] (0 when suppressed < 0), *count = rows counted. A row counts when labels is
// not null and its label is in [0, classes), not ignore_index and not excluded.
void softmax_losses(std::ptrdiff_t rows, int classes, const float* x, const int32_t* labels, int ignore_index, int excluded, int suppressed,
                    float* p, float* losses, float* count);
// Its gradient, given dy[2] for losses[0..1]: dx = w_ce (p - onehot(label)) [row counted]
// + w_sup p[suppressed] (onehot(suppressed) - p), w_ce = dy[0] / max(*count, 1), w_sup = dy[1] / rows.
void softmax_losses_gradient(std::ptrdiff_t rows, int classes, const float* p, const int32_t* labels, int ignore_index, int excluded, int suppressed,
                             const float* count, const float* dy, float* dx);

// Batch norm in training over rows of `channels` values: mean and biased variance of each channel
// (sums in double), y = (x - mean) / sqrt(variance + epsilon) * gamma + beta, then ReLU when `relu`.
void batch_norm_training(std::ptrdiff_t rows, int channels, const float* x, const float* gamma, const float* beta, float epsilon, bool relu,
                         float* y, float* mean, float* variance);
// Its gradient through the batch statistics, given dy; `y` (the forward's output) masks dy where a
// ReLU followed, or is null.
void batch_norm_training_gradient(std::ptrdiff_t rows, int channels, const float* x, const float* dy, const float* gamma, const float* mean,
                                  const float* variance, const float* y, float epsilon, float* dx, float* dgamma, float* dbeta);

}  // namespace dck
