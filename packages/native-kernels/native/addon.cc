// Node-API binding of the kernels. Tensors are passed as one Float32Array over the memory that
// holds them (the wasm backend's heap) and offsets into it, counted in floats, so no data is copied.
// This file is built without the kernels' vector instructions: it checks the CPU before any runs.
#include <node_api.h>

#include <cstdint>

#include "kernels.h"

namespace {

bool g_supported = false;

napi_value fail(napi_env env, const char* message) {
  napi_throw_error(env, nullptr, message);
  return nullptr;
}

struct Args {
  napi_env env;
  size_t count = 24;
  napi_value values[24];
  float* heap = nullptr;
  size_t heap_length = 0;
  bool ok = true;

  Args(napi_env e, napi_callback_info info, size_t expected) : env(e) {
    if (napi_get_cb_info(env, info, &count, values, nullptr, nullptr) != napi_ok || count < expected) {
      ok = false;
      fail(env, "native kernels: wrong number of arguments");
      return;
    }
    if (!g_supported) {
      ok = false;
      fail(env, "native kernels: this CPU lacks the instructions the build uses (AVX2 and FMA)");
      return;
    }
    napi_typedarray_type type;
    void* data = nullptr;
    napi_value buffer;
    size_t offset = 0;
    if (napi_get_typedarray_info(env, values[0], &type, &heap_length, &data, &buffer, &offset) != napi_ok || type != napi_float32_array) {
      ok = false;
      fail(env, "native kernels: the first argument must be a Float32Array");
      return;
    }
    heap = static_cast<float*>(data);
  }

  int32_t integer(size_t i) {
    int32_t v = 0;
    if (ok && napi_get_value_int32(env, values[i], &v) != napi_ok) {
      ok = false;
      fail(env, "native kernels: expected a number");
    }
    return v;
  }

  double number(size_t i) {
    double v = 0;
    if (ok && napi_get_value_double(env, values[i], &v) != napi_ok) {
      ok = false;
      fail(env, "native kernels: expected a number");
    }
    return v;
  }

  // A tensor at float offset `values[i]` with `length` floats, checked to lie inside the heap.
  float* tensor(size_t i, int64_t length) {
    const int32_t at = integer(i);
    if (!ok) return nullptr;
    if (at < 0 || length < 0 || static_cast<uint64_t>(at) + static_cast<uint64_t>(length) > heap_length) {
      ok = false;
      fail(env, "native kernels: a tensor lies outside the memory passed");
      return nullptr;
    }
    return heap + at;
  }
};

// (heap, x, filter, bias|-1, out, relu, ...geometry[15])
dck::ConvGeometry geometry(Args& a, size_t first) {
  dck::ConvGeometry g{};
  int32_t* fields[] = {&g.batch, &g.in_h, &g.in_w, &g.in_c, &g.out_h, &g.out_w, &g.out_c, &g.k_h,
                       &g.k_w, &g.stride_h, &g.stride_w, &g.dilation_h, &g.dilation_w, &g.pad_top, &g.pad_left};
  for (size_t i = 0; i < 15; ++i) *fields[i] = a.integer(first + i);
  if (a.ok && (g.batch < 0 || g.in_h < 1 || g.in_w < 1 || g.in_c < 1 || g.out_h < 0 || g.out_w < 0 || g.out_c < 1 || g.k_h < 1 ||
               g.k_w < 1 || g.stride_h < 1 || g.stride_w < 1 || g.dilation_h < 1 || g.dilation_w < 1)) {
    a.ok = false;
    fail(a.env, "native kernels: invalid convolution geometry");
  }
  return g;
}

int64_t image_size(const dck::ConvGeometry& g) { return int64_t(g.batch) * g.in_h * g.in_w * g.in_c; }
int64_t output_size(const dck::ConvGeometry& g) { return int64_t(g.batch) * g.out_h * g.out_w * g.out_c; }
int64_t filter_size(const dck::ConvGeometry& g) { return int64_t(g.k_h) * g.k_w * g.in_c * g.out_c; }

napi_value Conv2d(napi_env env, napi_callback_info info) {
  Args a(env, info, 21);
  if (!a.ok) return nullptr;
  dck::ConvGeometry g = geometry(a, 6);
  if (!a.ok) return nullptr;
  float* x = a.tensor(1, image_size(g));
  float* w = a.tensor(2, filter_size(g));
  const bool has_bias = a.integer(3) >= 0;
  float* bias = has_bias ? a.tensor(3, g.out_c) : nullptr;
  float* out = a.tensor(4, output_size(g));
  const bool relu = a.integer(5) != 0;
  if (!a.ok) return nullptr;
  dck::conv2d(g, x, w, bias, relu, out);
  return nullptr;
}

using Size = int64_t (*)(const dck::ConvGeometry&);

// (heap, t1, ..., tN, ...geometry[15]): a kernel on N tensors (2 or 3) of the sizes given, in place.
template <std::size_t N, typename Kernel>
napi_value geometry_tensors(napi_env env, napi_callback_info info, const Size (&sizes)[N], Kernel kernel) {
  static_assert(N == 2 || N == 3, "two or three tensors");
  Args a(env, info, 1 + N + 15);
  if (!a.ok) return nullptr;
  dck::ConvGeometry g = geometry(a, 1 + N);
  if (!a.ok) return nullptr;
  float* t[N];
  for (size_t i = 0; i < N; ++i) t[i] = a.tensor(1 + i, sizes[i](g));
  if (!a.ok) return nullptr;
  if constexpr (N == 2)
    kernel(g, t[0], t[1]);
  else
    kernel(g, t[0], t[1], t[2]);
  return nullptr;
}

// (heap, dy, filter, dx, ...geometry)
napi_value Conv2dInputGradient(napi_env env, napi_callback_info info) {
  return geometry_tensors(env, info, {output_size, filter_size, image_size}, dck::conv2d_input_gradient);
}

// (heap, x, dy, dfilter, ...geometry)
napi_value Conv2dFilterGradient(napi_env env, napi_callback_info info) {
  return geometry_tensors(env, info, {image_size, output_size, filter_size}, dck::conv2d_filter_gradient);
}

// A pooling keeps the channels; false (with the error thrown) where its geometry does not.
bool keeps_channels(napi_env env, const dck::ConvGeometry& g) {
  if (g.out_c == g.in_c) return true;
  fail(env, "native kernels: max pooling keeps the channels");
  return false;
}

// (heap, x, out, ...geometry) with out_c = in_c
napi_value MaxPool(napi_env env, napi_callback_info info) {
  return geometry_tensors(env, info, {image_size, output_size}, [env](const dck::ConvGeometry& g, const float* x, float* out) {
    if (keeps_channels(env, g)) dck::max_pool(g, x, out);
  });
}

// (heap, x, dy, dx, ...geometry) with out_c = in_c
napi_value MaxPoolGradient(napi_env env, napi_callback_info info) {
  return geometry_tensors(env, info, {image_size, output_size, image_size}, [env](const dck::ConvGeometry& g, const float* x, const float* dy, float* dx) {
    if (keeps_channels(env, g)) dck::max_pool_gradient(g, x, dy, dx);
  });
}

// (heap, from, to, batch, inH, inW, channels, outH, outW, gradient): bilinear resizing of `from`
// [batch, inH, inW, channels] into `to` [batch, outH, outW, channels]; with `gradient`, its gradient
// from `from` (the output's shape) into `to` (the input's).
napi_value ResizeBilinear(napi_env env, napi_callback_info info) {
  Args a(env, info, 10);
  if (!a.ok) return nullptr;
  const int32_t batch = a.integer(3), in_h = a.integer(4), in_w = a.integer(5), channels = a.integer(6), out_h = a.integer(7), out_w = a.integer(8);
  const bool gradient = a.integer(9) != 0;
  if (!a.ok) return nullptr;
  if (batch < 0 || in_h < 1 || in_w < 1 || channels < 0 || out_h < 1 || out_w < 1) return fail(env, "native kernels: invalid resize shape");
  const int64_t input = int64_t(batch) * in_h * in_w * channels, output = int64_t(batch) * out_h * out_w * channels;
  float* from = a.tensor(1, gradient ? output : input);
  float* to = a.tensor(2, gradient ? input : output);
  if (!a.ok) return nullptr;
  if (gradient)
    dck::resize_bilinear_gradient(batch, in_h, in_w, channels, out_h, out_w, from, to);
  else
    dck::resize_bilinear(batch, in_h, in_w, channels, out_h, out_w, from, to);
  return nullptr;
}

// (heap, a, b, out, batch, m, n, k, aBatchStride, bBatchStride, transposeA, transposeB)
napi_value MatMul(napi_env env, napi_callback_info info) {
  Args a(env, info, 12);
  if (!a.ok) return nullptr;
  const int32_t batch = a.integer(4), m = a.integer(5), n = a.integer(6), k = a.integer(7);
  const int32_t a_stride = a.integer(8), b_stride = a.integer(9);
  const bool ta = a.integer(10) != 0, tb = a.integer(11) != 0;
  if (!a.ok) return nullptr;
  if (batch < 1 || m < 0 || n < 0 || k < 0 || a_stride < 0 || b_stride < 0) return fail(env, "native kernels: invalid product shape");
  float* pa = a.tensor(1, int64_t(a_stride) * (batch - 1) + int64_t(m) * k);
  float* pb = a.tensor(2, int64_t(b_stride) * (batch - 1) + int64_t(k) * n);
  float* out = a.tensor(3, int64_t(batch) * m * n);
  if (!a.ok) return nullptr;
  dck::matmul(batch, m, n, k, pa, a_stride, ta, pb, b_stride, tb, out);
  return nullptr;
}

// (heap, x, mean|-1, variance|-1, offset|-1, scale|-1, out, rows, channels, epsilon)
napi_value BatchNorm(napi_env env, napi_callback_info info) {
  Args a(env, info, 10);
  if (!a.ok) return nullptr;
  const int32_t rows = a.integer(7), channels = a.integer(8);
  const double epsilon = a.number(9);
  if (!a.ok) return nullptr;
  if (rows < 0 || channels < 1) return fail(env, "native kernels: invalid batch-norm shape");
  const int64_t size = int64_t(rows) * channels;
  float* x = a.tensor(1, size);
  float* params[4] = {nullptr, nullptr, nullptr, nullptr};
  for (size_t i = 0; i < 4; ++i)
    if (a.integer(2 + i) >= 0) params[i] = a.tensor(2 + i, channels);
  float* out = a.tensor(6, size);
  if (!a.ok) return nullptr;
  dck::batch_norm(rows, channels, x, params[0], params[1], params[2], params[3], static_cast<float>(epsilon), out);
  return nullptr;
}

// (heap, x, gamma, beta, y, mean, variance, rows, channels, epsilon, relu)
napi_value BatchNormTraining(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  if (!a.ok) return nullptr;
  const int32_t rows = a.integer(7), channels = a.integer(8), relu = a.integer(10);
  const double epsilon = a.number(9);
  if (!a.ok) return nullptr;
  if (rows < 1 || channels < 1) return fail(env, "native kernels: invalid batch-norm shape");
  const int64_t size = int64_t(rows) * channels;
  float* x = a.tensor(1, size);
  float* gamma = a.tensor(2, channels);
  float* beta = a.tensor(3, channels);
  float* y = a.tensor(4, size);
  float* mean = a.tensor(5, channels);
  float* variance = a.tensor(6, channels);
  if (!a.ok) return nullptr;
  dck::batch_norm_training(rows, channels, x, gamma, beta, static_cast<float>(epsilon), relu != 0, y, mean, variance);
  return nullptr;
}

// (heap, x, dy, gamma, mean, variance, y|-1, dx, dgamma, dbeta, rows, channels, epsilon)
napi_value BatchNormTrainingGradient(napi_env env, napi_callback_info info) {
  Args a(env, info, 13);
  if (!a.ok) return nullptr;
  const int32_t rows = a.integer(10), channels = a.integer(11);
  const double epsilon = a.number(12);
  if (!a.ok) return nullptr;
  if (rows < 1 || channels < 1) return fail(env, "native kernels: invalid batch-norm shape");
  const int64_t size = int64_t(rows) * channels;
  float* x = a.tensor(1, size);
  float* dy = a.tensor(2, size);
  float* gamma = a.tensor(3, channels);
  float* mean = a.tensor(4, channels);
  float* variance = a.tensor(5, channels);
  float* y = a.integer(6) >= 0 ? a.tensor(6, size) : nullptr;
  float* dx = a.tensor(7, size);
  float* dgamma = a.tensor(8, channels);
  float* dbeta = a.tensor(9, channels);
  if (!a.ok) return nullptr;
  dck::batch_norm_training_gradient(rows, channels, x, dy, gamma, mean, variance, y, static_cast<float>(epsilon), dx, dgamma, dbeta);
  return nullptr;
}

// (heap, x, out, rows, columns, op) over a [rows, columns] matrix; op: 0 sum and 1 mean of each
// column (out: columns), 2 max of each row (out: rows), 3 softmax of each row (out: rows x columns)
napi_value Rows(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  if (!a.ok) return nullptr;
  const int32_t rows = a.integer(3), columns = a.integer(4), op = a.integer(5);
  if (!a.ok) return nullptr;
  if (rows < 0 || columns < (op >= 2 ? 1 : 0) || op < 0 || op > 3) return fail(env, "native kernels: invalid row operation");
  const int64_t size = int64_t(rows) * columns;
  float* x = a.tensor(1, size);
  float* out = a.tensor(2, op <= 1 ? columns : op == 2 ? rows : size);
  if (!a.ok) return nullptr;
  if (op <= 1)
    dck::reduce_rows(rows, columns, x, op == 1, out);
  else if (op == 2)
    dck::max_columns(rows, columns, x, out);
  else
    dck::softmax_rows(rows, columns, x, out);
  return nullptr;
}

// (heap, src, srcStride, dst, dstStride, rows, width)
napi_value CopyRows(napi_env env, napi_callback_info info) {
  Args a(env, info, 7);
  if (!a.ok) return nullptr;
  const int32_t src_stride = a.integer(2), dst_stride = a.integer(4), rows = a.integer(5), width = a.integer(6);
  if (!a.ok) return nullptr;
  if (rows < 0 || width < 0 || src_stride < width || dst_stride < width) return fail(env, "native kernels: invalid copy shape");
  if (rows == 0 || width == 0) return nullptr;
  float* src = a.tensor(1, int64_t(rows - 1) * src_stride + width);
  float* dst = a.tensor(3, int64_t(rows - 1) * dst_stride + width);
  if (!a.ok) return nullptr;
  dck::copy_rows(rows, width, src, src_stride, dst, dst_stride);
  return nullptr;
}

// (heap, x, v, out, rows, columns)
napi_value AddRowVector(napi_env env, napi_callback_info info) {
  Args a(env, info, 6);
  if (!a.ok) return nullptr;
  const int32_t rows = a.integer(4), columns = a.integer(5);
  if (!a.ok) return nullptr;
  if (rows < 0 || columns < 0) return fail(env, "native kernels: invalid row-vector shape");
  const int64_t size = int64_t(rows) * columns;
  float* x = a.tensor(1, size);
  float* v = a.tensor(2, columns);
  float* out = a.tensor(3, size);
  if (!a.ok) return nullptr;
  dck::add_row_vector(rows, columns, x, v, out);
  return nullptr;
}

// (heap, w, g, v|-1, wOut, vOut, size, learningRate, momentum, weightDecay)
napi_value SgdUpdate(napi_env env, napi_callback_info info) {
  Args a(env, info, 10);
  if (!a.ok) return nullptr;
  const int32_t size = a.integer(6);
  const double learning_rate = a.number(7), momentum = a.number(8), weight_decay = a.number(9);
  if (!a.ok) return nullptr;
  if (size < 0) return fail(env, "native kernels: invalid SGD size");
  float* w = a.tensor(1, size);
  float* g = a.tensor(2, size);
  float* v = a.integer(3) >= 0 ? a.tensor(3, size) : nullptr;
  float* w_out = a.tensor(4, size);
  float* v_out = a.tensor(5, size);
  if (!a.ok) return nullptr;
  dck::sgd_update(size, w, g, v, static_cast<float>(learning_rate), static_cast<float>(momentum), static_cast<float>(weight_decay), w_out, v_out);
  return nullptr;
}

// The arguments the two softmax-loss functions share, from position 6: rows, classes, ignoreIndex,
// excludedClass, suppressedClass; and the labels (or -1) at position 2.
struct LossArgs {
  int32_t rows = 0, classes = 0, ignore_index = 0, excluded = 0, suppressed = -1;
  int64_t size = 0;
  const int32_t* labels = nullptr;

  explicit LossArgs(Args& a) {
    rows = a.integer(6), classes = a.integer(7), ignore_index = a.integer(8), excluded = a.integer(9), suppressed = a.integer(10);
    if (!a.ok) return;
    if (rows < 0 || classes < 0 || suppressed >= classes || suppressed < -1) {
      a.ok = false;
      fail(a.env, "native kernels: invalid softmax-losses shape or class");
      return;
    }
    size = int64_t(rows) * classes;
    if (a.integer(2) >= 0) labels = reinterpret_cast<const int32_t*>(a.tensor(2, rows));
  }
};

// (heap, logits, labels|-1, losses, p, count, rows, classes, ignoreIndex, excludedClass, suppressedClass)
napi_value SoftmaxLosses(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  if (!a.ok) return nullptr;
  const LossArgs l(a);
  if (!a.ok) return nullptr;
  float* x = a.tensor(1, l.size);
  float* losses = a.tensor(3, 2);
  float* p = a.tensor(4, l.size);
  float* count = a.tensor(5, 1);
  if (!a.ok) return nullptr;
  dck::softmax_losses(l.rows, l.classes, x, l.labels, l.ignore_index, l.excluded, l.suppressed, p, losses, count);
  return nullptr;
}

// (heap, p, labels|-1, count, dy, dx, rows, classes, ignoreIndex, excludedClass, suppressedClass)
napi_value SoftmaxLossesGradient(napi_env env, napi_callback_info info) {
  Args a(env, info, 11);
  if (!a.ok) return nullptr;
  const LossArgs l(a);
  if (!a.ok) return nullptr;
  float* p = a.tensor(1, l.size);
  float* count = a.tensor(3, 1);
  float* dy = a.tensor(4, 2);
  float* dx = a.tensor(5, l.size);
  if (!a.ok) return nullptr;
  dck::softmax_losses_gradient(l.rows, l.classes, p, l.labels, l.ignore_index, l.excluded, l.suppressed, count, dy, dx);
  return nullptr;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t count = 1;
  napi_value value;
  int32_t threads = 1;
  if (napi_get_cb_info(env, info, &count, &value, nullptr, nullptr) != napi_ok || count < 1 || napi_get_value_int32(env, value, &threads) != napi_ok ||
      threads < 1 || threads > 64)
    return fail(env, "native kernels: threads must be a whole number from 1 to 64");
  dck::set_threads(threads);
  return nullptr;
}

napi_value Threads(napi_env env, napi_callback_info) {
  napi_value result;
  napi_create_int32(env, dck::threads(), &result);
  return result;
}

bool cpu_supported() {
#if (defined(__x86_64__) || defined(_M_X64)) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return true;
#endif
}

napi_value Init(napi_env env, napi_value exports) {
  g_supported = cpu_supported();
  napi_value supported, isa;
  napi_get_boolean(env, g_supported, &supported);
  napi_create_string_utf8(env, dck::isa(), NAPI_AUTO_LENGTH, &isa);
  napi_property_descriptor properties[] = {
      {"conv2d", nullptr, Conv2d, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dInputGradient", nullptr, Conv2dInputGradient, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dFilterGradient", nullptr, Conv2dFilterGradient, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matMul", nullptr, MatMul, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNorm", nullptr, BatchNorm, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormTraining", nullptr, BatchNormTraining, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormTrainingGradient", nullptr, BatchNormTrainingGradient, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"rows", nullptr, Rows, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"copyRows", nullptr, CopyRows, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"addRowVector", nullptr, AddRowVector, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"sgdUpdate", nullptr, SgdUpdate, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxLosses", nullptr, SoftmaxLosses, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"softmaxLossesGradient", nullptr, SoftmaxLossesGradient, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPool", nullptr, MaxPool, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"maxPoolGradient", nullptr, MaxPoolGradient, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"resizeBilinear", nullptr, ResizeBilinear, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"threads", nullptr, Threads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"supported", nullptr, nullptr, nullptr, nullptr, supported, napi_enumerable, nullptr},
      {"isa", nullptr, nullptr, nullptr, nullptr, isa, napi_enumerable, nullptr},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
