// Convolutions and matrix products for training on the CPU: one packed matrix product (GEMM, in
// gemm.h: built here for AVX2, in gemm_avx512.cc for AVX-512), and convolutions as that product
// over patches of the image (im2col), built a tile of rows at a time so that the patches stay in
// cache.
#include "kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#define DCK_X86 1
#include <immintrin.h>
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma")
#endif
#endif

// After the pragma above: the AVX2 build of the product is built for AVX2.
#include "gemm.h"

namespace dck {
namespace {

typedef float v8 __attribute__((vector_size(32)));

inline v8 splat(float s) {
  v8 r = {s, s, s, s, s, s, s, s};
  return r;
}
inline v8 load(const float* p) {
  v8 r;
  std::memcpy(&r, p, sizeof r);
  return r;
}
inline void store(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }

// The buffer of patches of the thread's convolution tiles.
float* patches_buffer(std::size_t size) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < size) buffer.resize(size);
  return buffer.data();
}

bool use_avx512() {
  static const bool yes = [] {
#if DCK_X86
    const char* isa = std::getenv("DROPCLASS_NATIVE_ISA");
    if (isa && std::strcmp(isa, "avx2") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
  }();
  return yes;
}

// The inner kernel's shape for n columns (AVX2): one vector wide for up to 8, else two.
template <typename F>
void with_kernel(int n, F f) {
  if (n <= 8)
    f(Gemm<v8, 8, 1>{});
  else
    f(Gemm<v8, 6, 2>{});
}

// The product C[m x n] (+)= A[m x k] B[k x n], on AVX-512 where the CPU has it (asked once, at the
// first product; DROPCLASS_NATIVE_ISA=avx2 keeps to AVX2), with B as a view or packed by pack_b.
void gemm(int m, int n, int k, View a, View b, float* c, std::ptrdiff_t ldc, bool add, const PackedB* packed = nullptr) {
#if DCK_X86
  if (use_avx512()) return gemm_avx512(m, n, k, a, b, c, ldc, add, packed);
#endif
  with_kernel(n, [&](auto kernel) { kernel.run(m, n, k, a, b, c, ldc, add, packed); });
}

// B packed whole for the build gemm uses, its blocks packed on the threads.
PackedB pack_b(int k, int n, View b) {
  PackedB out;
#if DCK_X86
  if (use_avx512()) {
    pack_b_avx512(k, n, b, out);
    return out;
  }
#endif
  with_kernel(n, [&](auto kernel) { kernel.pack_whole_b(k, n, b, out); });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Thread pool: the caller's thread works too; workers wait on a condition between calls.

struct Pool {
  std::mutex mu;
  std::condition_variable wake;
  const std::function<void(int)>* body = nullptr;
  int count = 0;
  unsigned long generation = 0;
  std::atomic<int> next{0}, done{0}, active{0};
  int started = 0;
  int wanted = 1;
  std::mutex calls;  // one call at a time: callers on other threads (Node workers) wait their turn

  void work(const std::function<void(int)>* job, int n) {
    for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
      (*job)(i);
      done.fetch_add(1);
    }
  }

  void loop(int id) {
    unsigned long seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      int n;
      {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait(lock, [&] { return generation != seen; });
        seen = generation;
        if (id >= wanted - 1) continue;
        job = body;
        n = count;
        active.fetch_add(1);
      }
      work(job, n);
      active.fetch_sub(1);
    }
  }

  void resize(int threads) {
    std::lock_guard<std::mutex> lock(mu);
    wanted = threads;
    for (; started < threads - 1; ++started) std::thread([this, id = started] { loop(id); }).detach();
  }

  void run(int n, const std::function<void(int)>& f) {
    if (n <= 1 || wanted <= 1) {
      for (int i = 0; i < n; ++i) f(i);
      return;
    }
    std::lock_guard<std::mutex> one(calls);
    {
      std::unique_lock<std::mutex> lock(mu);
      // A worker that woke too late for the last call may still hold that call's job (it joins
      // under this lock, finds nothing left and leaves): the counters are reset only after it left.
      while (active.load() > 0) {
        lock.unlock();
        std::this_thread::yield();
        lock.lock();
      }
      body = &f;
      count = n;
      next.store(0);
      done.store(0);
      ++generation;
    }
    wake.notify_all();
    work(&f, n);
    while (done.load() < n) std::this_thread::yield();
    while (active.load() > 0) std::this_thread::yield();
  }
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: its threads are detached
  return *p;
}

// Splits [0, total) into at most `parts` ranges of whole `grain`s.
struct Split {
  int total, size, parts;
  Split(int total_, int parts_, int grain) : total(total_) {
    const int grains = std::max(1, (total + grain - 1) / grain);
    parts = std::max(1, std::min(parts_, grains));
    size = (grains + parts - 1) / parts * grain;
    parts = std::max(1, (total + size - 1) / size);
  }
  int begin(int i) const { return std::min(total, i * size); }
  int end(int i) const { return std::min(total, (i + 1) * size); }
};

typedef std::int32_t v8i __attribute__((vector_size(32)));

inline v8 bits_to_floats(v8i v) {
  v8 r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}
inline v8i floats_to_bits(v8 v) {
  v8i r;
  std::memcpy(&r, &v, sizeof r);
  return r;
}

// exp of 8 floats, as Cephes' expf: e^x = 2^n e^r with n = floor(x log2(e) + 1/2), r = x - n ln 2
// (ln 2 in two parts), e^r by a polynomial of degree 6; within about 2e-7 of exp relative to it.
// Below -87.3 (where e^x leaves the normal floats) it gives 0; NaN stays NaN.
inline v8 exp8(v8 x) {
  const v8i under = x < splat(-87.33654f);
  const v8 fx = x * splat(1.44269504088896341f) + splat(0.5f);
  v8 n = __builtin_convertvector(__builtin_convertvector(fx, v8i), v8);
  n -= bits_to_floats(floats_to_bits(splat(1.f)) & (fx < n));  // truncation to floor
  const v8 r = x - n * splat(0.693359375f) + n * splat(2.12194440e-4f);
  v8 y = splat(1.9875691500e-4f);
  y = y * r + splat(1.3981999507e-3f);
  y = y * r + splat(8.3334519073e-3f);
  y = y * r + splat(4.1665795894e-2f);
  y = y * r + splat(1.6666665459e-1f);
  y = y * r + splat(5.0000001201e-1f);
  y = y * (r * r) + r + splat(1.f);
  const v8i scale = (__builtin_convertvector(n, v8i) + 127) << 23;
  const v8i nan = x != x;
  return bits_to_floats((floats_to_bits(y * bits_to_floats(scale)) & ~under & ~nan) | (floats_to_bits(x) & nan));
}

// Largest and sum of 8 floats (a tree of shuffles where the build has AVX, not a chain of 8).
inline float max8(v8 v) {
#if DCK_X86
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
#else
  float m = v[0];
  for (int j = 1; j < 8; ++j) m = v[j] > m ? v[j] : m;
  return m;
#endif
}
inline float sum8(v8 v) {
#if DCK_X86
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
#else
  float s = 0.f;
  for (int j = 0; j < 8; ++j) s += v[j];
  return s;
#endif
}

// dst = softmax of one row; returns the row's maximum and the sum of exp(row - maximum). Rows of 8
// or more go 8 values at a time; a NaN in the row makes the row NaN.
inline __attribute__((always_inline)) std::pair<float, float> softmax_row(const float* row, int columns, float* dst) {
  int c = 0;
  float top = row[0];
  if (columns >= 8) {
    v8 m = load(row);
    for (c = 8; c + 8 <= columns; c += 8) {
      const v8 v = load(row + c);
      m = bits_to_floats((floats_to_bits(v) & (v > m)) | (floats_to_bits(m) & ~(v > m)));
    }
    top = max8(m);
  }
  for (; c < columns; ++c) top = row[c] > top ? row[c] : top;
  v8 total = splat(0.f);
  for (c = 0; c + 8 <= columns; c += 8) {
    const v8 e = exp8(load(row + c) - splat(top));
    store(dst + c, e);
    total += e;
  }
  if (c < columns) {
#if DCK_X86
    // The last few values as one vector too, the lanes past the row at -inf (exp8 gives them 0): a
    // scalar exp per value cost more than the rest of the row (19 classes: 3 of them).
    const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(columns - c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const v8 v = _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(row + c, lanes), _mm256_castsi256_ps(lanes));
    const v8 e = exp8(v - splat(top));
    _mm256_maskstore_ps(dst + c, lanes, e);
    total += e;
#else
    float rest = 0.f;
    for (; c < columns; ++c) rest += (dst[c] = std::exp(row[c] - top));
    total[0] += rest;
#endif
  }
  const float sum = sum8(total);
  const float inverse = 1.f / sum;
  for (c = 0; c < columns; ++c) dst[c] *= inverse;
  return {top, sum};
}

// Rows of patches per tile: enough for the inner kernel, few enough to stay in cache.
int tile_rows(int depth) { return std::max(48, std::min(2048, (16384 / std::max(1, depth)) / 48 * 48)); }

bool pointwise(const ConvGeometry& g) {
  return g.k_h == 1 && g.k_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_top == 0 && g.pad_left == 0 &&
         g.out_h == g.in_h && g.out_w == g.in_w;
}

// Copies n floats, 8 at a time as vectors, inline: the runs im2col copies are a few dozen floats,
// too short for a call to memcpy to pay.
inline void copy_floats(float* __restrict dst, const float* __restrict src, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) store(dst + i, load(src + i));
  for (; i < n; ++i) dst[i] = src[i];
}

// dst[i] += src[i] for n floats, 8 at a time.
inline void add_floats(float* __restrict dst, const float* __restrict src, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) store(dst + i, load(dst + i) + load(src + i));
  for (; i < n; ++i) dst[i] += src[i];
}

// The taps of one row of the kernel (tap row ky) for output pixel (oy, ox): calls run(kx0, kx1, ix0)
// for each run of taps [kx0, kx1) that reads the image, from its column ix0, and pad(kx0, kx1) for
// each run of taps outside it. Without dilation along the width, the taps inside the image are one
// run: their patch values lie side by side in the image as in the patch row.
template <typename Run, typename Pad>
inline void tap_runs(const ConvGeometry& g, int ox, Run run, Pad pad) {
  const int ix0 = ox * g.stride_w - g.pad_left;
  if (g.dilation_w == 1) {
    // Taps kx read column ix0 + kx: those in [0, in_w) are one run.
    const int first = std::min(g.k_w, std::max(0, -ix0)), last = std::max(first, std::min(g.k_w, g.in_w - ix0));
    if (first > 0) pad(0, first);
    if (last > first) run(first, last, ix0 + first);
    if (last < g.k_w) pad(last, g.k_w);
    return;
  }
  for (int kx = 0; kx < g.k_w; ++kx) {
    const int ix = ix0 + kx * g.dilation_w;
    if (ix < 0 || ix >= g.in_w)
      pad(kx, kx + 1);
    else
      run(kx, kx + 1, ix);
  }
}

// Output pixel r of the batch as (image, row, column), stepped one pixel at a time.
struct PixelCursor {
  int b, oy, ox;
  const ConvGeometry& g;
  PixelCursor(const ConvGeometry& g_, int r) : g(g_) {
    const int per_image = g.out_h * g.out_w, rem = r % per_image;
    b = r / per_image, oy = rem / g.out_w, ox = rem % g.out_w;
  }
  void next() {
    if (++ox < g.out_w) return;
    ox = 0;
    if (++oy < g.out_h) return;
    oy = 0, ++b;
  }
};

// Patches for output pixels [r0, r1) of the whole batch: row r holds (tap row, tap column, channel).
void im2col(const ConvGeometry& g, const float* x, int r0, int r1, float* col) {
  const int depth = g.k_h * g.k_w * g.in_c;
  const int c = g.in_c;
  PixelCursor at(g, r0);
  for (int r = r0; r < r1; ++r, at.next()) {
    float* row = col + static_cast<std::ptrdiff_t>(r - r0) * depth;
    for (int ky = 0; ky < g.k_h; ++ky) {
      float* dst = row + ky * g.k_w * c;
      const int iy = at.oy * g.stride_h - g.pad_top + ky * g.dilation_h;
      if (iy < 0 || iy >= g.in_h) {
        std::memset(dst, 0, sizeof(float) * g.k_w * c);
        continue;
      }
      const float* line = x + (static_cast<std::ptrdiff_t>(at.b) * g.in_h + iy) * g.in_w * c;
      tap_runs(
          g, at.ox, [&](int kx0, int kx1, int ix) { copy_floats(dst + kx0 * c, line + static_cast<std::ptrdiff_t>(ix) * c, (kx1 - kx0) * c); },
          [&](int kx0, int kx1) { std::memset(dst + kx0 * c, 0, sizeof(float) * (kx1 - kx0) * c); });
    }
  }
}

// Adds patch gradients for output pixels [r0, r1) back onto the input gradient (the inverse of im2col).
void col2im_add(const ConvGeometry& g, const float* col, int r0, int r1, float* dx) {
  const int depth = g.k_h * g.k_w * g.in_c;
  const int c = g.in_c;
  PixelCursor at(g, r0);
  for (int r = r0; r < r1; ++r, at.next()) {
    const float* row = col + static_cast<std::ptrdiff_t>(r - r0) * depth;
    for (int ky = 0; ky < g.k_h; ++ky) {
      const int iy = at.oy * g.stride_h - g.pad_top + ky * g.dilation_h;
      if (iy < 0 || iy >= g.in_h) continue;
      const float* src = row + ky * g.k_w * c;
      float* line = dx + (static_cast<std::ptrdiff_t>(at.b) * g.in_h + iy) * g.in_w * c;
      tap_runs(
          g, at.ox, [&](int kx0, int kx1, int ix) { add_floats(line + static_cast<std::ptrdiff_t>(ix) * c, src + kx0 * c, (kx1 - kx0) * c); }, [](int, int) {});
    }
  }
}

}  // namespace

void parallel_for(int count, const std::function<void(int)>& body) { pool().run(count, body); }
void set_threads(int threads) { pool().resize(std::max(1, threads)); }
int threads() { return pool().wanted; }


const char* isa() {
#if DCK_X86
  return use_avx512() ? "avx512f+fma" : "avx2+fma";
#else
  return "generic";
#endif
}

namespace {

// Output rows [o0, o1) (or columns) whose taps along one kernel axis read inside the image for taps
// [k0, k1) and only those (the taps that do are side by side: positions grow with the tap).
struct AxisRun {
  int o0, o1, k0, k1;
};

// Pixel p of the rectangle of output rows `rows` by columns `columns`, over the batch, image after
// image and row after row: its image, row and column.
struct RegionPixel {
  int b, oy, ox;
  RegionPixel(const AxisRun& rows, const AxisRun& columns, int p) {
    const int width = columns.o1 - columns.o0, area = (rows.o1 - rows.o0) * width;
    b = p / area, oy = rows.o0 + p % area / width, ox = columns.o0 + p % width;
  }
};

std::vector<AxisRun> axis_runs(int out, int in, int k, int stride, int dilation, int pad) {
  std::vector<AxisRun> runs;
  for (int o = 0; o < out; ++o) {
    int k0 = 0, k1 = 0;
    for (int i = 0; i < k; ++i) {
      const int at = o * stride - pad + i * dilation;
      if (at < 0 || at >= in) continue;
      if (k1 == 0) k0 = i;
      k1 = i + 1;
    }
    if (!runs.empty() && runs.back().k0 == k0 && runs.back().k1 == k1) {
      runs.back().o1 = o + 1;
    } else {
      runs.push_back({o, o + 1, k0, k1});
    }
  }
  return runs;
}

// The share of a convolution's taps that read padding (0 to 1).
double padding_share(const ConvGeometry& g, const std::vector<AxisRun>& rows, const std::vector<AxisRun>& columns) {
  double read = 0;
  for (const AxisRun& r : rows)
    for (const AxisRun& c : columns) read += double(r.o1 - r.o0) * (c.o1 - c.o0) * (r.k1 - r.k0) * (c.k1 - c.k0);
  return 1.0 - read / (double(g.out_h) * g.out_w * g.k_h * g.k_w);
}

// Whether at least a tenth of a convolution's taps read padding: there the regions' way below pays
// (DeepLabV3's ASPP at 2x32x32, 512->256, forward: rate 12 6.8-8.7 ms against 11.2-11.8, rate 18
// 4.7-6.1 against 11.3-11.9; rate 6, with 23% of its taps on padding, 11.0-12.9 against 11.3-12.1).
bool regions_pay(const ConvGeometry& g) {
  return padding_share(g, axis_runs(g.out_h, g.in_h, g.k_h, g.stride_h, g.dilation_h, g.pad_top),
                       axis_runs(g.out_w, g.in_w, g.k_w, g.stride_w, g.dilation_w, g.pad_left)) >= 0.1;
}

// A convolution whose taps read much padding (a dilated one: DeepLabV3's ASPP at rate 18 on a 32x32
// map reads padding with 61% of its taps), computed region by region of the output, each region a
// rectangle whose pixels read the image with the same taps: its patches hold those taps only, each
// multiplied by that tap's rows of the filter. Each value is the sum over the taps that read the
// image, in tap order (the patches' way adds the padding's zeros too, and parts the depth elsewhere).
// `filters[t]` is tap t's [in_c, out_c] matrix (the filter's rows for the tap, or for the input
// gradient the turned filter's, read transposed where they lie).
void conv2d_by_regions(const ConvGeometry& g, const std::vector<View>& filters, const float* x, const float* bias, bool relu, float* out) {
  const std::vector<AxisRun> rows = axis_runs(g.out_h, g.in_h, g.k_h, g.stride_h, g.dilation_h, g.pad_top);
  const std::vector<AxisRun> columns = axis_runs(g.out_w, g.in_w, g.k_w, g.stride_w, g.dilation_w, g.pad_left);
  const int n = g.out_c, c = g.in_c;
  // Each tap's matrix packed once, for every region that reads with it: a product per tap, each
  // added to the last, sums the depth in tap order.
  std::vector<PackedB> taps(filters.size());
  for (std::size_t t = 0; t < taps.size(); ++t) taps[t] = pack_b(c, n, filters[t]);
  struct Region {
    AxisRun r, c;
    int depth, pixels, tile;
  };
  std::vector<Region> regions;
  for (const AxisRun& r : rows)
    for (const AxisRun& col : columns) {
      const int depth = (r.k1 - r.k0) * (col.k1 - col.k0) * c;
      regions.push_back({r, col, depth, g.batch * (r.o1 - r.o0) * (col.o1 - col.o0), tile_rows(std::max(1, depth))});
    }
  struct Item {
    int region, p0, p1;
  };
  std::vector<Item> items;
  for (int i = 0; i < static_cast<int>(regions.size()); ++i)
    for (int p0 = 0; p0 < regions[i].pixels; p0 += regions[i].tile) items.push_back({i, p0, std::min(regions[i].pixels, p0 + regions[i].tile)});
  parallel_for(static_cast<int>(items.size()), [&](int u) {
    const Item& item = items[u];
    const Region& region = regions[item.region];
    const int taps_x = region.c.k1 - region.c.k0;
    const int count = item.p1 - item.p0;
    float* result = nullptr;
    if (region.depth > 0) {
      float* col = patches_buffer(static_cast<std::size_t>(count) * region.depth + static_cast<std::size_t>(count) * n);
      result = col + static_cast<std::ptrdiff_t>(count) * region.depth;
      for (int p = item.p0; p < item.p1; ++p) {
        const RegionPixel at(region.r, region.c, p);
        float* dst = col + static_cast<std::ptrdiff_t>(p - item.p0) * region.depth;
        for (int ky = region.r.k0; ky < region.r.k1; ++ky) {
          const int iy = at.oy * g.stride_h - g.pad_top + ky * g.dilation_h;
          const float* line = x + (static_cast<std::ptrdiff_t>(at.b) * g.in_h + iy) * g.in_w * c;
          const int ix0 = at.ox * g.stride_w - g.pad_left + region.c.k0 * g.dilation_w;
          if (g.dilation_w == 1) {
            copy_floats(dst, line + static_cast<std::ptrdiff_t>(ix0) * c, taps_x * c);
            dst += taps_x * c;
          } else {
            for (int kx = 0; kx < taps_x; ++kx, dst += c) copy_floats(dst, line + static_cast<std::ptrdiff_t>(ix0 + kx * g.dilation_w) * c, c);
          }
        }
      }
      int j = 0;
      for (int ky = region.r.k0; ky < region.r.k1; ++ky)
        for (int kx = region.c.k0; kx < region.c.k1; ++kx, ++j) {
          const int tap = ky * g.k_w + kx;
          gemm(count, n, c, View{col + static_cast<std::ptrdiff_t>(j) * c, region.depth, 1}, filters[tap], result, n, j > 0, &taps[tap]);
        }
    }
    for (int p = item.p0; p < item.p1; ++p) {
      const RegionPixel at(region.r, region.c, p);
      float* y = out + ((static_cast<std::ptrdiff_t>(at.b) * g.out_h + at.oy) * g.out_w + at.ox) * n;
      const float* sum = result ? result + static_cast<std::ptrdiff_t>(p - item.p0) * n : nullptr;
      for (int k = 0; k < n; ++k) {
        float v = sum ? sum[k] : 0.f;
        if (bias) v += bias[k];
        y[k] = relu && v < 0.f ? 0.f : v;
      }
    }
  });
}

}  // namespace

void conv2d(const ConvGeometry& g, const float* x, const float* filter, const float* bias, bool relu, float* out) {
  if ((g.dilation_h > 1 || g.dilation_w > 1) && regions_pay(g)) {
    std::vector<View> taps;
    for (int t = 0; t < g.k_h * g.k_w; ++t) taps.push_back(View{filter + static_cast<std::ptrdiff_t>(t) * g.in_c * g.out_c, g.out_c, 1});
    return conv2d_by_regions(g, taps, x, bias, relu, out);
  }
  const int rows = g.batch * g.out_h * g.out_w;
  const int depth = g.k_h * g.k_w * g.in_c;
  const int n = g.out_c;
  const View w{filter, n, 1};
  const bool direct = pointwise(g);
  const int tile = tile_rows(depth);
  const int tiles = (rows + tile - 1) / tile;
  const auto epilogue = [&](float* y, int r0, int r1, int c0, int c1) {
    if (bias || relu)
      for (int r = r0; r < r1; ++r, y += n)
        for (int c = c0; c < c1; ++c) {
          const float v = bias ? y[c] + bias[c] : y[c];
          y[c] = relu && v < 0.f ? 0.f : v;
        }
  };
  const Split columns(n, std::max(1, threads() / std::max(1, tiles)), 64);
  if (columns.parts > 1) {
    // Fewer tiles of rows than threads (a small image, or a deep layer's few pixels): the output's
    // columns are parted too, each part packing only its columns of the filter. Each value is the
    // same sum, parted or not.
    parallel_for(tiles * columns.parts, [&](int u) {
      const int t = u / columns.parts, c0 = columns.begin(u % columns.parts), c1 = columns.end(u % columns.parts);
      const int r0 = t * tile, r1 = std::min(rows, r0 + tile);
      float* y = out + static_cast<std::ptrdiff_t>(r0) * n;
      const float* patches = x + static_cast<std::ptrdiff_t>(r0) * depth;
      if (!direct) {
        float* col = patches_buffer(static_cast<std::size_t>(tile) * depth);
        im2col(g, x, r0, r1, col);
        patches = col;
      }
      gemm(r1 - r0, c1 - c0, depth, View{patches, depth, 1}, View{filter + c0, n, 1}, y + c0, n, false);
      epilogue(y, r0, r1, c0, c1);
    });
    return;
  }
  const PackedB packed = pack_b(depth, n, w);  // once, for every tile
  parallel_for(tiles, [&](int t) {
    const int r0 = t * tile, r1 = std::min(rows, r0 + tile);
    float* y = out + static_cast<std::ptrdiff_t>(r0) * n;
    if (direct) {
      gemm(r1 - r0, n, depth, View{x + static_cast<std::ptrdiff_t>(r0) * depth, depth, 1}, w, y, n, false, &packed);
    } else {
      float* col = patches_buffer(static_cast<std::size_t>(tile) * depth);
      im2col(g, x, r0, r1, col);
      gemm(r1 - r0, n, depth, View{col, depth, 1}, w, y, n, false, &packed);
    }
    epilogue(y, r0, r1, 0, n);
  });
}

namespace {

// Whether the input gradient of this convolution is computed as a forward convolution of the
// output gradient (see conv2d_input_gradient): with stride 1, and few outputs (up to 32) or at
// least three inputs per output. There it beat the patches' way on U-Net layers (16->16 at
// 4x128x128: 2.2 ms against 2.9); with as many outputs as inputs from 64 on it lost (DeepLabV3's
// 512->512: 32 ms against 26).
bool input_gradient_as_convolution(const ConvGeometry& g) {
  if (!(g.stride_h == 1 && g.stride_w == 1 && !pointwise(g) && g.k_h * g.k_w > 1 && g.pad_top <= (g.k_h - 1) * g.dilation_h &&
        g.pad_left <= (g.k_w - 1) * g.dilation_w))
    return false;
  if (g.in_c >= g.out_c && (g.out_c <= 32 || g.in_c >= 3 * g.out_c)) return true;
  // A dilated conv whose taps read much padding: the forward conv skips them (conv2d_by_regions).
  return (g.dilation_h > 1 || g.dilation_w > 1) && regions_pay(g);
}

}  // namespace

void conv2d_input_gradient(const ConvGeometry& g, const float* dy, const float* filter, float* dx) {
  const int depth = g.k_h * g.k_w * g.in_c;
  const int n = g.out_c;
  if (input_gradient_as_convolution(g)) {
    // With stride 1 the input gradient is the output gradient, framed, convolved with the filter
    // turned by 180 degrees and its channels swapped: one product of depth taps x outputs into the
    // gradient itself, where the patches' way writes taps x inputs values per pixel and adds them
    // back one by one.
    ConvGeometry t = g;
    t.in_h = g.out_h, t.in_w = g.out_w, t.in_c = g.out_c;
    t.out_h = g.in_h, t.out_w = g.in_w, t.out_c = g.in_c;
    t.pad_top = (g.k_h - 1) * g.dilation_h - g.pad_top;
    t.pad_left = (g.k_w - 1) * g.dilation_w - g.pad_left;
    if ((t.dilation_h > 1 || t.dilation_w > 1) && regions_pay(t)) {
      // Tap (ky, kx) of the turned filter is tap (k_h-1-ky, k_w-1-kx) of the filter, transposed: read
      // where it lies, packed per tap.
      std::vector<View> taps;
      for (int ky = 0; ky < g.k_h; ++ky)
        for (int kx = 0; kx < g.k_w; ++kx)
          taps.push_back(View{filter + ((static_cast<std::ptrdiff_t>(g.k_h - 1 - ky) * g.k_w + (g.k_w - 1 - kx)) * g.in_c) * g.out_c, 1, g.out_c});
      conv2d_by_regions(t, taps, dy, nullptr, false, dx);
      return;
    }
    std::vector<float> turned(static_cast<std::size_t>(g.k_h) * g.k_w * g.in_c * g.out_c);
    for (int ky = 0; ky < g.k_h; ++ky)
      for (int kx = 0; kx < g.k_w; ++kx)
        for (int co = 0; co < g.out_c; ++co)
          for (int ci = 0; ci < g.in_c; ++ci)
            turned[((static_cast<std::size_t>(ky) * g.k_w + kx) * g.out_c + co) * g.in_c + ci] =
                filter[((static_cast<std::size_t>(g.k_h - 1 - ky) * g.k_w + (g.k_w - 1 - kx)) * g.in_c + ci) * g.out_c + co];
    conv2d(t, dy, turned.data(), nullptr, false, dx);
    return;
  }
  // The filter as [out, taps x in]: the transpose of its [taps x in, out] layout.
  const View wt{filter, 1, n};
  const PackedB packed = pack_b(n, depth, wt);  // once, for every tile
  if (pointwise(g)) {
    const int rows = g.batch * g.in_h * g.in_w;
    const Split split(rows, threads() * 4, 48);
    parallel_for(split.parts, [&](int i) {
      const int r0 = split.begin(i), r1 = split.end(i);
      gemm(r1 - r0, depth, n, View{dy + static_cast<std::ptrdiff_t>(r0) * n, n, 1}, wt, dx + static_cast<std::ptrdiff_t>(r0) * depth, depth, false, &packed);
    });
    return;
  }
  const int per_image = g.out_h * g.out_w;
  const std::ptrdiff_t image = static_cast<std::ptrdiff_t>(g.in_h) * g.in_w * g.in_c;
  const int tile = tile_rows(depth);
  // Images are independent: each part writes the gradient of whole images. Small images go
  // several to a part, so that a tile of rows spans images and the product has rows to work on (a
  // dilated conv as space-to-batch makes hundreds of 1x1 images); the parts depend on the sizes
  // only, never on the threads, so neither do the sums.
  const int group = std::max(1, tile / std::max(1, per_image));
  const int parts = (g.batch + group - 1) / group;
  const int rows = g.batch * per_image;
  const Split columns(depth, std::max(1, threads() / parts), 64);
  if (columns.parts > 1 && rows <= 4 * tile) {
    // Fewer parts than threads and few rows: the patches' gradient of all rows is computed with its
    // columns parted (each part packing its rows of the transposed filter), then added back image by
    // image. Each value is the same sum, parted or not.
    std::vector<float> col(static_cast<std::size_t>(rows) * depth);
    parallel_for(columns.parts, [&](int j) {
      const int c0 = columns.begin(j), c1 = columns.end(j);
      for (int r0 = 0; r0 < rows; r0 += tile) {
        const int r1 = std::min(rows, r0 + tile);
        gemm(r1 - r0, c1 - c0, n, View{dy + static_cast<std::ptrdiff_t>(r0) * n, n, 1}, View{filter + static_cast<std::ptrdiff_t>(c0) * n, 1, n},
             col.data() + static_cast<std::ptrdiff_t>(r0) * depth + c0, depth, false);
      }
    });
    parallel_for(g.batch, [&](int b) {
      std::memset(dx + b * image, 0, sizeof(float) * image);
      col2im_add(g, col.data() + static_cast<std::ptrdiff_t>(b) * per_image * depth, b * per_image, (b + 1) * per_image, dx);
    });
    return;
  }
  parallel_for(parts, [&](int p) {
    const int b0 = p * group, b1 = std::min(g.batch, b0 + group);
    std::memset(dx + b0 * image, 0, sizeof(float) * image * (b1 - b0));
    float* col = patches_buffer(static_cast<std::size_t>(tile) * depth);
    for (int r0 = b0 * per_image; r0 < b1 * per_image; r0 += tile) {
      const int r1 = std::min(b1 * per_image, r0 + tile);
      gemm(r1 - r0, depth, n, View{dy + static_cast<std::ptrdiff_t>(r0) * n, n, 1}, wt, col, depth, false, &packed);
      col2im_add(g, col, r0, r1, dx);
    }
  });
}

namespace {

// The filter gradient of a convolution whose taps read much padding (see regions_pay), tap by tap:
// each tap's gradient sums, over the pixels whose tap reads the image, the image values it reads
// times the output gradient, tile by tile in the regions' order. The threads take whole taps, the
// busiest first; each tap's sums are in the same order whatever the threads.
void conv2d_filter_gradient_by_regions(const ConvGeometry& g, const float* x, const float* dy, float* dfilter) {
  const int n = g.out_c, c = g.in_c, taps = g.k_h * g.k_w;
  const std::vector<AxisRun> rows = axis_runs(g.out_h, g.in_h, g.k_h, g.stride_h, g.dilation_h, g.pad_top);
  const std::vector<AxisRun> columns = axis_runs(g.out_w, g.in_w, g.k_w, g.stride_w, g.dilation_w, g.pad_left);
  auto reads = [](const AxisRun& run, int k) { return k >= run.k0 && k < run.k1; };
  std::vector<std::int64_t> work(taps, 0);
  for (int t = 0; t < taps; ++t)
    for (const AxisRun& r : rows)
      for (const AxisRun& col : columns)
        if (reads(r, t / g.k_w) && reads(col, t % g.k_w)) work[t] += std::int64_t(r.o1 - r.o0) * (col.o1 - col.o0);
  std::vector<int> order(taps);
  for (int t = 0; t < taps; ++t) order[t] = t;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return work[a] > work[b]; });
  parallel_for(taps, [&](int u) {
    const int tap = order[u], ky = tap / g.k_w, kx = tap % g.k_w;
    float* sum = dfilter + static_cast<std::ptrdiff_t>(tap) * c * n;
    std::memset(sum, 0, sizeof(float) * c * n);
    float* values = patches_buffer(static_cast<std::size_t>(KC) * (c + n));  // a tile's image values, then its output gradient
    float* grads = values + static_cast<std::ptrdiff_t>(KC) * c;
    for (const AxisRun& r : rows) {
      if (!reads(r, ky)) continue;
      for (const AxisRun& col : columns) {
        if (!reads(col, kx)) continue;
        const int pixels = g.batch * (r.o1 - r.o0) * (col.o1 - col.o0);
        for (int p0 = 0; p0 < pixels; p0 += KC) {
          const int count = std::min(KC, pixels - p0);
          for (int p = p0; p < p0 + count; ++p) {
            const RegionPixel at(r, col, p);
            const int iy = at.oy * g.stride_h - g.pad_top + ky * g.dilation_h, ix = at.ox * g.stride_w - g.pad_left + kx * g.dilation_w;
            copy_floats(values + static_cast<std::ptrdiff_t>(p - p0) * c, x + ((static_cast<std::ptrdiff_t>(at.b) * g.in_h + iy) * g.in_w + ix) * c, c);
            copy_floats(grads + static_cast<std::ptrdiff_t>(p - p0) * n, dy + ((static_cast<std::ptrdiff_t>(at.b) * g.out_h + at.oy) * g.out_w + at.ox) * n, n);
          }
          gemm(c, n, count, View{values, 1, c}, View{grads, n, 1}, sum, n, true);
        }
      }
    }
  });
}

}  // namespace

void conv2d_filter_gradient(const ConvGeometry& g, const float* x, const float* dy, float* dfilter) {
  if ((g.dilation_h > 1 || g.dilation_w > 1) && regions_pay(g)) return conv2d_filter_gradient_by_regions(g, x, dy, dfilter);
  const int rows = g.batch * g.out_h * g.out_w;
  const int depth = g.k_h * g.k_w * g.in_c;
  const int n = g.out_c;
  const std::size_t size = static_cast<std::size_t>(depth) * n;
  const bool direct = pointwise(g);
  // Tiles of at least a packed block's depth (KC rows): the filter's gradient, read and written by
  // every product, is visited once per KC rows, not once per tile of the forward's size.
  const int tile = std::max(KC, tile_rows(depth));
  // Each part sums its rows' products into a buffer of its own; the parts are added at the end, in
  // order. How the rows are parted depends on the shapes alone, never on the threads, so that the
  // result is the same for any number of threads: at most 8 parts of whole tiles, fewer where the
  // buffers would pass 8 MiB (a large filter's gradient, a few MiB, summed in parts and the parts
  // added took longer than one part whose outputs the threads share: DeepLabV3's 512->512 at
  // 16x8x8 15 ms against 11-13 with 8 MiB; with 64 MiB it was four parts).
  const int by_memory = static_cast<int>(std::max<std::size_t>(1, (std::size_t(8) << 20) / (sizeof(float) * std::max<std::size_t>(1, size))));
  const Split split(rows, std::min(8, by_memory), tile);
  std::vector<float> partial(size * std::max(0, split.parts - 1));
  // With fewer parts than threads, each part's rows of the gradient (the filter's taps x inputs) are
  // parted too: a pure parting of the outputs, which changes no sum, so it may follow the threads.
  const Split outputs(depth, std::max(1, threads() / split.parts), 48);
  parallel_for(split.parts * outputs.parts, [&](int u) {
    const int i = u / outputs.parts, d0 = outputs.begin(u % outputs.parts), d1 = outputs.end(u % outputs.parts);
    float* sum = (i == 0 ? dfilter : partial.data() + (i - 1) * size) + static_cast<std::ptrdiff_t>(d0) * n;
    std::memset(sum, 0, sizeof(float) * (d1 - d0) * n);
    float* col = direct ? nullptr : patches_buffer(static_cast<std::size_t>(tile) * depth);
    for (int r0 = split.begin(i); r0 < split.end(i); r0 += tile) {
      const int r1 = std::min(split.end(i), r0 + tile);
      const float* patches = x + static_cast<std::ptrdiff_t>(r0) * depth;
      if (!direct) {
        im2col(g, x, r0, r1, col);
        patches = col;
      }
      gemm(d1 - d0, n, r1 - r0, View{patches + d0, 1, depth}, View{dy + static_cast<std::ptrdiff_t>(r0) * n, n, 1}, sum, n, true);
    }
  });
  for (int i = 1; i < split.parts; ++i) {
    const float* p = partial.data() + (i - 1) * size;
    for (std::size_t j = 0; j < size; ++j) dfilter[j] += p[j];
  }
}

namespace {

// A short, wide product (few outputs, a long depth) is summed in parts of its depth, each in a
// buffer of its own, added in order at the end. The parts depend on the shape alone, never on the
// threads, so that the result is the same for any number of threads.
int depth_parts(int m, int n, int k) {
  if (k < 4096 || static_cast<std::int64_t>(m) * n > 65536) return 1;
  return std::min(8, k / 2048);
}

// One product of the batch, its depth parted as `depth_parts` says; the parts run on the threads
// when `parallel` (not from inside another parallel_for), else one after another.
void product(int m, int n, int k, View a, View b, float* c, bool parallel) {
  const int parts = depth_parts(m, n, k);
  if (parts == 1) {
    gemm(m, n, k, a, b, c, n, false);
    return;
  }
  const Split split(k, parts, 256);
  const std::size_t size = static_cast<std::size_t>(m) * n;
  std::vector<float> partial(size * (split.parts - 1));
  auto part = [&](int j) {
    const int p0 = split.begin(j), p1 = split.end(j);
    float* sum = j == 0 ? c : partial.data() + (j - 1) * size;
    gemm(m, n, p1 - p0, View{a.at(0, p0), a.rs, a.cs}, View{b.at(p0, 0), b.rs, b.cs}, sum, n, false);
  };
  if (parallel)
    parallel_for(split.parts, part);
  else
    for (int j = 0; j < split.parts; ++j) part(j);
  for (int j = 1; j < split.parts; ++j)
    for (std::size_t e = 0; e < size; ++e) c[e] += partial[(j - 1) * size + e];
}

}  // namespace

void matmul(int batch, int m, int n, int k, const float* a, std::ptrdiff_t a_batch_stride, bool transpose_a, const float* b,
            std::ptrdiff_t b_batch_stride, bool transpose_b, float* out) {
  const View av{a, transpose_a ? 1 : k, transpose_a ? m : 1};
  const View bv{b, transpose_b ? 1 : n, transpose_b ? k : 1};
  const std::ptrdiff_t out_stride = static_cast<std::ptrdiff_t>(m) * n;
  const int workers = threads();
  // Rows apart, columns apart or whole, each value of the result is the same sum in the same order;
  // only the depth's parting would change it, and that follows the shape alone (see depth_parts).
  if (batch >= workers || workers == 1) {
    parallel_for(batch, [&](int i) {
      product(m, n, k, View{av.p + i * a_batch_stride, av.rs, av.cs}, View{bv.p + i * b_batch_stride, bv.rs, bv.cs}, out + i * out_stride, batch == 1);
    });
    return;
  }
  for (int i = 0; i < batch; ++i) {
    const View ai{av.p + i * a_batch_stride, av.rs, av.cs}, bi{bv.p + i * b_batch_stride, bv.rs, bv.cs};
    float* c = out + i * out_stride;
    if (m >= workers * 48) {
      // Rows apart.
      const Split split(m, workers * 4, 48);
      parallel_for(split.parts, [&](int j) {
        const int r0 = split.begin(j), r1 = split.end(j);
        gemm(r1 - r0, n, k, View{ai.at(r0, 0), ai.rs, ai.cs}, bi, c + static_cast<std::ptrdiff_t>(r0) * n, n, false);
      });
    } else if (n >= workers * 64) {
      // Columns apart.
      const Split split(n, workers, 16);
      parallel_for(split.parts, [&](int j) {
        const int c0 = split.begin(j), c1 = split.end(j);
        gemm(m, c1 - c0, k, ai, View{bi.at(0, c0), bi.rs, bi.cs}, c + c0, n, false);
      });
    } else {
      product(m, n, k, ai, bi, c, true);
    }
  }
}

void batch_norm(std::ptrdiff_t rows, int channels, const float* x, const float* mean, const float* variance, const float* offset,
                const float* scale, float epsilon, float* out, bool relu) {
  // Per channel: out = x * k + b with k = scale / sqrt(variance + epsilon), b = offset - mean * k.
  std::vector<float> k(channels), b(channels);
  for (int c = 0; c < channels; ++c) {
    k[c] = (scale ? scale[c] : 1.f) / std::sqrt((variance ? variance[c] : 1.f) + epsilon);
    b[c] = (offset ? offset[c] : 0.f) - (mean ? mean[c] : 0.f) * k[c];
  }
  const Split split(static_cast<int>(rows), threads() * 4, 64);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t r = split.begin(i); r < split.end(i); ++r) {
      const float* src = x + r * channels;
      float* dst = out + r * channels;
      if (relu)
        for (int c = 0; c < channels; ++c) dst[c] = std::max(src[c] * k[c] + b[c], 0.f);
      else
        for (int c = 0; c < channels; ++c) dst[c] = src[c] * k[c] + b[c];
    }
  });
}

#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
void sgd_update(std::ptrdiff_t size, const float* w, const float* g, const float* v, float learning_rate, float momentum, float weight_decay, float* w_out,
                float* v_out) {
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif
  const Split split(static_cast<int>(size), size >= 65536 ? threads() : 1, 4096);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t j = split.begin(i); j < split.end(i); ++j) {
      float d = g[j];
      if (weight_decay != 0.f) {
        const float decayed_by = w[j] * weight_decay;
        d = d + decayed_by;
      }
      float next = d;
      if (v) {
        const float kept = v[j] * momentum;
        next = kept + d;
      }
      v_out[j] = next;
      const float step = next * learning_rate;
      w_out[j] = w[j] - step;
    }
  });
}

void reduce_rows(std::ptrdiff_t rows, std::ptrdiff_t columns, const float* x, bool mean, float* out) {
  // Blocks of rows (256, or more to keep to 1024 blocks) each summed in float into a row of its
  // own, then the blocks added in order in double: the blocks follow the shape alone, never the
  // threads, so the result is the same for any number of threads.
  const std::ptrdiff_t block_rows = std::max<std::ptrdiff_t>(256, (rows + 1023) / 1024);
  const int blocks = static_cast<int>(std::max<std::ptrdiff_t>(1, (rows + block_rows - 1) / block_rows));
  std::vector<float> sums(static_cast<std::size_t>(blocks) * columns, 0.f);
  auto block = [&](int i) {
    // Summed in a row of the thread's own, copied out at the end (as channel_sums does): a few
    // columns' sums of neighbouring blocks share cache lines.
    thread_local std::vector<float> local;
    local.assign(static_cast<std::size_t>(columns), 0.f);
    float* sum = local.data();
    const std::ptrdiff_t r1 = std::min<std::ptrdiff_t>(rows, (i + 1) * block_rows);
    for (std::ptrdiff_t r = i * block_rows; r < r1; ++r) {
      const float* row = x + r * columns;
      for (std::ptrdiff_t c = 0; c < columns; ++c) sum[c] += row[c];
    }
    std::copy(local.begin(), local.end(), sums.begin() + static_cast<std::ptrdiff_t>(i) * columns);
  };
  if (rows * columns >= 65536)
    parallel_for(blocks, block);
  else
    for (int i = 0; i < blocks; ++i) block(i);
  for (std::ptrdiff_t c = 0; c < columns; ++c) {
    double total = 0.0;
    for (int i = 0; i < blocks; ++i) total += sums[static_cast<std::size_t>(i) * columns + c];
    out[c] = mean ? (rows > 0 ? static_cast<float>(total / static_cast<double>(rows)) : NAN) : static_cast<float>(total);
  }
}

void max_columns(std::ptrdiff_t rows, int columns, const float* x, float* out) {
  const Split split(static_cast<int>(rows), rows * columns >= 65536 ? threads() : 1, 256);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t r = split.begin(i); r < split.end(i); ++r) {
      const float* row = x + r * columns;
      float best = row[0];
      for (int c = 1; c < columns; ++c) {
        const float v = row[c];
        best = (v > best || v != v) && best == best ? v : best;
      }
      out[r] = best;
    }
  });
}

void softmax_rows(std::ptrdiff_t rows, int columns, const float* x, float* out) {
  const Split split(static_cast<int>(rows), rows * columns >= 65536 ? threads() : 1, 256);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t r = split.begin(i); r < split.end(i); ++r) {
      softmax_row(x + r * columns, columns, out + r * columns);
    }
  });
}

void copy_rows(std::ptrdiff_t rows, std::ptrdiff_t width, const float* src, std::ptrdiff_t src_stride, float* dst, std::ptrdiff_t dst_stride) {
  const Split split(static_cast<int>(rows), rows * width >= 65536 ? threads() : 1, 1);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t r = split.begin(i); r < split.end(i); ++r) std::memcpy(dst + r * dst_stride, src + r * src_stride, sizeof(float) * width);
  });
}

void add_row_vector(std::ptrdiff_t rows, int columns, const float* x, const float* v, float* out) {
  const Split split(static_cast<int>(rows), rows * columns >= 65536 ? threads() * 4 : 1, 64);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t r = split.begin(i); r < split.end(i); ++r) {
      const float* src = x + r * columns;
      float* dst = out + r * columns;
      for (int c = 0; c < columns; ++c) dst[c] = src[c] + v[c];
    }
  });
}

namespace {

// Calls visit(offset) for each pixel of output (oy, ox)'s pooling window that lies in the image, in
// order (tap row, tap column), with the pixel's offset in its image (in floats).
template <typename Visit>
inline void each_in_window(const ConvGeometry& g, int oy, int ox, Visit visit) {
  for (int ky = 0; ky < g.k_h; ++ky) {
    const int iy = oy * g.stride_h - g.pad_top + ky * g.dilation_h;
    if (iy < 0 || iy >= g.in_h) continue;
    for (int kx = 0; kx < g.k_w; ++kx) {
      const int ix = ox * g.stride_w - g.pad_left + kx * g.dilation_w;
      if (ix < 0 || ix >= g.in_w) continue;
      visit((static_cast<std::ptrdiff_t>(iy) * g.in_w + ix) * g.in_c);
    }
  }
}

}  // namespace

void max_pool(const ConvGeometry& g, const float* x, float* out) {
  const std::ptrdiff_t image = static_cast<std::ptrdiff_t>(g.in_h) * g.in_w * g.in_c;
  const int rows = g.batch * g.out_h;
  const Split split(rows, static_cast<std::ptrdiff_t>(rows) * g.out_w * g.in_c >= 65536 ? threads() * 4 : 1, 1);
  parallel_for(split.parts, [&](int i) {
    for (int row = split.begin(i); row < split.end(i); ++row) {
      const int b = row / g.out_h, oy = row % g.out_h;
      for (int ox = 0; ox < g.out_w; ++ox) {
        float* dst = out + (static_cast<std::ptrdiff_t>(row) * g.out_w + ox) * g.in_c;
        std::fill(dst, dst + g.in_c, -INFINITY);
        each_in_window(g, oy, ox, [&](std::ptrdiff_t at) {
          const float* src = x + b * image + at;
          for (int c = 0; c < g.in_c; ++c) dst[c] = src[c] > dst[c] ? src[c] : dst[c];
        });
      }
    }
  });
}

void max_pool_gradient(const ConvGeometry& g, const float* x, const float* dy, float* dx) {
  const std::ptrdiff_t image = static_cast<std::ptrdiff_t>(g.in_h) * g.in_w * g.in_c;
  parallel_for(g.batch, [&](int b) {
    std::memset(dx + b * image, 0, sizeof(float) * image);
    std::vector<float> best(g.in_c);
    std::vector<std::ptrdiff_t> where(g.in_c);
    for (int oy = 0; oy < g.out_h; ++oy)
      for (int ox = 0; ox < g.out_w; ++ox) {
        std::fill(best.begin(), best.end(), -INFINITY);
        std::fill(where.begin(), where.end(), -1);
        each_in_window(g, oy, ox, [&](std::ptrdiff_t offset) {
          const std::ptrdiff_t at = b * image + offset;
          // As tfjs's cpu kernel: the first value above all before it (NaN never is).
          for (int c = 0; c < g.in_c; ++c)
            if (x[at + c] > best[c]) {
              best[c] = x[at + c];
              where[c] = at + c;
            }
        });
        const float* grad = dy + ((static_cast<std::ptrdiff_t>(b) * g.out_h + oy) * g.out_w + ox) * g.in_c;
        for (int c = 0; c < g.in_c; ++c)
          if (where[c] >= 0) dx[where[c]] += grad[c];
      }
  });
}

namespace {

// Output o of a resize from `in` to `out` samples reads input i0 with weight w0 and input i1 with
// w1, or only i0 (i1 < 0) where both are the same sample: bilinear with half-pixel centres, the
// weights as core's bilinearMatrix makes them (in double, stored as float32, summed where the taps
// meet).
struct Tap {
  int i0, i1;
  float w0, w1;
};

std::vector<Tap> bilinear_taps(int in, int out) {
  std::vector<Tap> taps(static_cast<std::size_t>(out));
  const double scale = static_cast<double>(in) / out;
  for (int o = 0; o < out; ++o) {
    const double src = std::max((o + 0.5) * scale - 0.5, 0.0);
    const int i0 = std::min(static_cast<int>(std::floor(src)), in - 1);
    const int i1 = std::min(i0 + 1, in - 1);
    const double frac = src - i0;
    const float w0 = static_cast<float>(1.0 - frac);
    taps[o] = i1 == i0 ? Tap{i0, -1, static_cast<float>(w0 + frac), 0.f} : Tap{i0, i1, w0, static_cast<float>(frac)};
  }
  return taps;
}

// dst[i] = w0 a[i] (+ w1 b[i]) for n floats: one tap, or two summed as a product's depth is (the
// second added to the first's product in one rounding).
inline void taps_row(float* __restrict dst, const Tap& t, const float* a, const float* b, int n) {
  if (t.i1 < 0)
    for (int i = 0; i < n; ++i) dst[i] = t.w0 * a[i];
  else
    for (int i = 0; i < n; ++i) dst[i] = std::fma(t.w1, b[i], t.w0 * a[i]);
}

}  // namespace

void resize_bilinear(int batch, int in_h, int in_w, int channels, int out_h, int out_w, const float* x, float* out) {
  const std::vector<Tap> rows = bilinear_taps(in_h, out_h), columns = bilinear_taps(in_w, out_w);
  const std::ptrdiff_t in_line = static_cast<std::ptrdiff_t>(in_w) * channels, out_line = static_cast<std::ptrdiff_t>(out_w) * channels;
  const int lines = batch * out_h;
  const Split split(lines, static_cast<std::ptrdiff_t>(lines) * out_line >= 65536 ? threads() * 4 : 1, 1);
  parallel_for(split.parts, [&](int part) {
    std::vector<float> row(static_cast<std::size_t>(in_line));  // the output row's taps of the input rows
    for (int line = split.begin(part); line < split.end(part); ++line) {
      const int b = line / out_h;
      const Tap& r = rows[line % out_h];
      const float* image = x + static_cast<std::ptrdiff_t>(b) * in_h * in_line;
      taps_row(row.data(), r, image + r.i0 * in_line, image + std::max(r.i1, 0) * in_line, static_cast<int>(in_line));
      float* dst = out + static_cast<std::ptrdiff_t>(line) * out_line;
      for (int ox = 0; ox < out_w; ++ox, dst += channels) {
        const Tap& c = columns[ox];
        taps_row(dst, c, row.data() + static_cast<std::ptrdiff_t>(c.i0) * channels, row.data() + static_cast<std::ptrdiff_t>(std::max(c.i1, 0)) * channels, channels);
      }
    }
  });
}

void resize_bilinear_gradient(int batch, int in_h, int in_w, int channels, int out_h, int out_w, const float* dy, float* dx) {
  const std::vector<Tap> rows = bilinear_taps(in_h, out_h), columns = bilinear_taps(in_w, out_w);
  const std::ptrdiff_t in_line = static_cast<std::ptrdiff_t>(in_w) * channels, out_line = static_cast<std::ptrdiff_t>(out_w) * channels;
  // First each output row's gradient spread on the input columns (one row of `spread` per output
  // row, its columns summed in output order), then each input row summed from the rows of `spread`
  // that read it, in output order: every value a sum in a fixed order, whatever the threads.
  std::vector<float> spread(static_cast<std::size_t>(batch) * out_h * in_line);
  const int lines = batch * out_h;
  const bool parallel = static_cast<std::ptrdiff_t>(lines) * out_line >= 65536;
  const Split out_split(lines, parallel ? threads() * 4 : 1, 1);
  parallel_for(out_split.parts, [&](int part) {
    for (int line = out_split.begin(part); line < out_split.end(part); ++line) {
      float* dst = spread.data() + static_cast<std::ptrdiff_t>(line) * in_line;
      std::fill(dst, dst + in_line, 0.f);
      const float* src = dy + static_cast<std::ptrdiff_t>(line) * out_line;
      for (int ox = 0; ox < out_w; ++ox, src += channels) {
        const Tap& c = columns[ox];
        float* d0 = dst + static_cast<std::ptrdiff_t>(c.i0) * channels;
        for (int k = 0; k < channels; ++k) d0[k] = std::fma(c.w0, src[k], d0[k]);
        if (c.i1 < 0) continue;
        float* d1 = dst + static_cast<std::ptrdiff_t>(c.i1) * channels;
        for (int k = 0; k < channels; ++k) d1[k] = std::fma(c.w1, src[k], d1[k]);
      }
    }
  });
  // The output rows that read each input row, with their weights, in output order.
  std::vector<std::vector<std::pair<int, float>>> readers(static_cast<std::size_t>(in_h));
  for (int oy = 0; oy < out_h; ++oy) {
    readers[rows[oy].i0].push_back({oy, rows[oy].w0});
    if (rows[oy].i1 >= 0) readers[rows[oy].i1].push_back({oy, rows[oy].w1});
  }
  const int in_lines = batch * in_h;
  const Split in_split(in_lines, parallel ? threads() * 4 : 1, 1);
  parallel_for(in_split.parts, [&](int part) {
    for (int line = in_split.begin(part); line < in_split.end(part); ++line) {
      const int b = line / in_h;
      float* dst = dx + static_cast<std::ptrdiff_t>(line) * in_line;
      std::fill(dst, dst + in_line, 0.f);
      for (const auto& [oy, w] : readers[line % in_h]) {
        const float* src = spread.data() + (static_cast<std::ptrdiff_t>(b) * out_h + oy) * in_line;
        for (std::ptrdiff_t k = 0; k < in_line; ++k) dst[k] = std::fma(w, src[k], dst[k]);
      }
    }
  });
}

namespace {

// Blocks of rows whose loss sums are taken apart and added in order: the same result for any number of threads.
constexpr int LOSS_BLOCK = 1024;

bool counted(const int32_t* labels, std::ptrdiff_t r, int classes, int ignore_index, int excluded) {
  if (!labels) return false;
  const int32_t label = labels[r];
  return label >= 0 && label < classes && label != ignore_index && label != excluded;
}

}  // namespace

void softmax_losses(std::ptrdiff_t rows, int classes, const float* x, const int32_t* labels, int ignore_index, int excluded, int suppressed,
                    float* p, float* losses, float* count) {
  if (classes < 1) rows = 0;
  const int blocks = static_cast<int>((rows + LOSS_BLOCK - 1) / LOSS_BLOCK);
  // Per block: sum of -log p[label] over counted rows, rows counted, sum of p[suppressed].
  std::vector<double> sums(static_cast<std::size_t>(blocks) * 3, 0.0);
  parallel_for(blocks, [&](int i) {
    // -log p[label] = log(sum) - (x[label] - top) per row: the logs of the sums are taken once per
    // block, as the log of their product (a log per row took as long as the softmax), the product
    // kept in range by moving its exponent out every 32 rows (each sum is at most `classes`).
    double cross = 0, in_block = 0, suppression = 0, product = 1;
    long exponent = 0;
    const std::ptrdiff_t end = std::min<std::ptrdiff_t>(rows, static_cast<std::ptrdiff_t>(i + 1) * LOSS_BLOCK);
    for (std::ptrdiff_t r = static_cast<std::ptrdiff_t>(i) * LOSS_BLOCK; r < end; ++r) {
      const float* row = x + r * classes;
      float* dst = p + r * classes;
      const auto [top, sum] = softmax_row(row, classes, dst);
      if (counted(labels, r, classes, ignore_index, excluded)) {
        cross -= static_cast<double>(row[labels[r]]) - top;
        product *= sum;
        in_block += 1;
        if (static_cast<long>(in_block) % 32 == 0) {
          int e;
          product = std::frexp(product, &e);
          exponent += e;
        }
      }
      if (suppressed >= 0) suppression += dst[suppressed];
    }
    cross += std::log(product) + static_cast<double>(exponent) * 0.69314718055994530942;
    sums[3 * i] = cross;
    sums[3 * i + 1] = in_block;
    sums[3 * i + 2] = suppression;
  });
  double cross = 0, counted_rows = 0, suppression = 0;
  for (int i = 0; i < blocks; ++i) {
    cross += sums[3 * i];
    counted_rows += sums[3 * i + 1];
    suppression += sums[3 * i + 2];
  }
  losses[0] = static_cast<float>(counted_rows > 0 ? cross / counted_rows : 0.0);
  losses[1] = static_cast<float>(rows > 0 ? suppression / static_cast<double>(rows) : 0.0);
  *count = static_cast<float>(counted_rows);
}

void softmax_losses_gradient(std::ptrdiff_t rows, int classes, const float* p, const int32_t* labels, int ignore_index, int excluded, int suppressed,
                             const float* count, const float* dy, float* dx) {
  if (classes < 1) return;
  const float w_ce = labels ? dy[0] / std::max(*count, 1.f) : 0.f;
  const float w_sup = suppressed >= 0 && rows > 0 ? dy[1] / static_cast<float>(rows) : 0.f;
  const Split split(static_cast<int>(rows), rows * classes >= 65536 ? threads() : 1, 256);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t r = split.begin(i); r < split.end(i); ++r) {
      const float* row = p + r * classes;
      float* dst = dx + r * classes;
      const bool in = counted(labels, r, classes, ignore_index, excluded);
      const float pz = suppressed >= 0 ? row[suppressed] * w_sup : 0.f;
      const float scale = (in ? w_ce : 0.f) - pz;
      for (int c = 0; c < classes; ++c) dst[c] = row[c] * scale;
      if (in) dst[labels[r]] -= w_ce;
      if (suppressed >= 0) dst[suppressed] += pz;
    }
  });
}

namespace {

// Per-channel sums over blocks of LOSS_BLOCK rows, each block's in double, added in block order:
// the same result for any number of threads. `term(r, c)` is the value summed; returns [terms][C].
template <int Terms, typename Term>
std::vector<double> channel_sums(std::ptrdiff_t rows, int channels, Term term) {
  const int blocks = static_cast<int>((rows + LOSS_BLOCK - 1) / LOSS_BLOCK);
  std::vector<double> partial(static_cast<std::size_t>(blocks) * Terms * channels, 0.0);
  parallel_for(blocks, [&](int i) {
    // Each block sums in a buffer of its thread's, copied out at the block's end: summed in place,
    // next to the neighbouring block's sums, the two threads wrote to the same cache lines row after
    // row (a batch norm's forward on [65536,16] took 1.25 ms with 2 threads, 0.68 with one).
    thread_local std::vector<double> local;
    local.assign(static_cast<std::size_t>(Terms) * channels, 0.0);
    double* sum = local.data();
    const std::ptrdiff_t end = std::min<std::ptrdiff_t>(rows, static_cast<std::ptrdiff_t>(i + 1) * LOSS_BLOCK);
    double values[Terms];
    for (std::ptrdiff_t r = static_cast<std::ptrdiff_t>(i) * LOSS_BLOCK; r < end; ++r)
      for (int c = 0; c < channels; ++c) {
        term(r, c, values);
        for (int t = 0; t < Terms; ++t) sum[t * channels + c] += values[t];
      }
    std::copy(local.begin(), local.end(), partial.begin() + static_cast<std::ptrdiff_t>(i) * Terms * channels);
  });
  std::vector<double> total(static_cast<std::size_t>(Terms) * channels, 0.0);
  for (int i = 0; i < blocks; ++i)
    for (int j = 0; j < Terms * channels; ++j) total[j] += partial[static_cast<std::size_t>(i) * Terms * channels + j];
  return total;
}

}  // namespace

void batch_norm_training(std::ptrdiff_t rows, int channels, const float* x, const float* gamma, const float* beta, float epsilon, bool relu,
                         float* y, float* mean, float* variance) {
  const double n = static_cast<double>(std::max<std::ptrdiff_t>(rows, 1));
  const std::vector<double> sums = channel_sums<1>(rows, channels, [&](std::ptrdiff_t r, int c, double* v) { v[0] = x[r * channels + c]; });
  for (int c = 0; c < channels; ++c) mean[c] = static_cast<float>(sums[c] / n);
  const std::vector<double> squares = channel_sums<1>(rows, channels, [&](std::ptrdiff_t r, int c, double* v) {
    const double d = x[r * channels + c] - mean[c];
    v[0] = d * d;
  });
  for (int c = 0; c < channels; ++c) variance[c] = static_cast<float>(squares[c] / n);
  batch_norm(rows, channels, x, mean, variance, beta, gamma, epsilon, y, relu);
}

namespace {

// The gradient for dy masked by the ReLU's output (Relu) or not: a template, so that neither loop tests for it.
template <bool Relu>
void batch_norm_training_gradient(std::ptrdiff_t rows, int channels, const float* x, const float* dy, const float* gamma, const float* mean,
                                  const float* variance, const float* y, float epsilon, float* dx, float* dgamma, float* dbeta) {
  // With the ReLU, dy counts only where its output y is positive: its bits and-ed with a mask, where
  // a comparison and branch per value would be mispredicted half the time.
  auto grad = [&](std::ptrdiff_t j) {
    if (!Relu) return dy[j];
    std::uint32_t bits;
    std::memcpy(&bits, dy + j, sizeof bits);
    bits &= 0u - static_cast<std::uint32_t>(y[j] > 0.f);
    float g;
    std::memcpy(&g, &bits, sizeof g);
    return g;
  };
  const std::vector<double> sums = channel_sums<2>(rows, channels, [&](std::ptrdiff_t r, int c, double* v) {
    const std::ptrdiff_t j = r * channels + c;
    const float g = grad(j);
    v[0] = g;
    v[1] = g * (x[j] - mean[c]);
  });
  // dx = k (dy - dbeta / n - x^ dgamma / n) = dy k + (x - mean) a + b per channel, k = gamma inv,
  // x^ = (x - mean) inv, dgamma = inv sum(dy (x - mean)), dbeta = sum(dy).
  const float n = static_cast<float>(std::max<std::ptrdiff_t>(rows, 1));
  std::vector<float> k(channels), a(channels), b(channels);
  for (int c = 0; c < channels; ++c) {
    const float inv = 1.f / std::sqrt(variance[c] + epsilon);
    dbeta[c] = static_cast<float>(sums[c]);
    dgamma[c] = static_cast<float>(sums[channels + c]) * inv;
    k[c] = gamma[c] * inv;
    a[c] = -k[c] * inv * (dgamma[c] / n);
    b[c] = -k[c] * (dbeta[c] / n);
  }
  const Split split(static_cast<int>(rows), rows * channels >= 65536 ? threads() : 1, 256);
  parallel_for(split.parts, [&](int i) {
    for (std::ptrdiff_t r = split.begin(i); r < split.end(i); ++r)
      for (int c = 0; c < channels; ++c) {
        const std::ptrdiff_t j = r * channels + c;
        dx[j] = grad(j) * k[c] + (x[j] - mean[c]) * a[c] + b[c];
      }
  });
}

}  // namespace

void batch_norm_training_gradient(std::ptrdiff_t rows, int channels, const float* x, const float* dy, const float* gamma, const float* mean,
                                  const float* variance, const float* y, float epsilon, float* dx, float* dgamma, float* dbeta) {
  if (y)
    batch_norm_training_gradient<true>(rows, channels, x, dy, gamma, mean, variance, y, epsilon, dx, dgamma, dbeta);
  else
    batch_norm_training_gradient<false>(rows, channels, x, dy, gamma, mean, variance, y, epsilon, dx, dgamma, dbeta);
}

}  // namespace dck

#if DCK_X86 && defined(__clang__)
#pragma clang attribute pop
#endif
