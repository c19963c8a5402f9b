// The packed matrix product (GEMM), written once for any vector width. kernels.cc builds it with
// 8-float (AVX2) vectors and gemm_avx512.cc with 16-float (AVX-512) ones, each file under its own
// instruction set; the unnamed namespace keeps each file's build to itself, so that no code built
// for AVX-512 is ever shared with the code that runs where AVX-512 is missing.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels.h"

namespace dck {

// A matrix seen through strides: element (i, j) is p[i * rs + j * cs]. Transposes are strides.
struct View {
  const float* p;
  std::ptrdiff_t rs, cs;
  const float* at(std::ptrdiff_t i, std::ptrdiff_t j) const { return p + i * rs + j * cs; }
};

// B[k x n] packed whole, once, for many products with it: a convolution's filter, used by every
// tile of rows. Only the build that packed it reads it.
struct PackedB {
  std::vector<float> data;
};

// The AVX-512 build (gemm_avx512.cc), used where the CPU has AVX-512: C[m x n] (+)= A[m x k] B[k x n]
// with B as a view, or packed by pack_b_avx512 when `packed` is given.
void gemm_avx512(int m, int n, int k, View a, View b, float* c, std::ptrdiff_t ldc, bool add, const PackedB* packed);
void pack_b_avx512(int k, int n, View b, PackedB& out);

namespace {

constexpr int KC = 256;   // depth of a packed block
constexpr int MC = 96;    // rows of a packed block of A (a multiple of every MR below)
constexpr int NC = 2048;  // columns of a packed block of B

// The packing buffers of the thread (one for B, one for A).
float* packing_buffer(int which, std::size_t size) {
  thread_local std::vector<float> buffers[2];
  auto& v = buffers[which];
  if (v.size() < size) v.resize(size);
  return v.data();
}

// C[m x n] (+)= A[m x k] B[k x n], with C's rows `ldc` apart, on vectors V of W floats: MR rows by
// NV*W columns per inner kernel. Each value of C is summed in the order of the depth, whatever the
// vector width or kernel shape, so every build gives the same sums.
template <typename V, int MR, int NV>
struct Gemm {
  static constexpr int W = sizeof(V) / sizeof(float);
  static constexpr int NR = NV * W;

  static V load(const float* p) {
    V r;
    std::memcpy(&r, p, sizeof r);
    return r;
  }
  static void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }

  // A's value for row i of the block at depth p is a[p * ps + i * is]: packed (ps MR, is 1), or
  // read where it lies in A (ps and is A's strides).
  static void micro(int kc, const float* __restrict a, std::ptrdiff_t ps, std::ptrdiff_t is, const float* __restrict b, float* c, std::ptrdiff_t ldc, int mr, int nr,
                    bool add) {
    V acc[MR][NV];
    for (int i = 0; i < MR; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = V{};
    for (int p = 0; p < kc; ++p) {
      V bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = load(b + p * NR + W * v);
      for (int i = 0; i < MR; ++i) {
        const float av = a[p * ps + i * is];  // a scalar times a vector: one broadcast, no added zero
        for (int v = 0; v < NV; ++v) acc[i][v] += av * bv[v];
      }
    }
    if (mr == MR && nr == NR) {
      for (int i = 0; i < MR; ++i)
        for (int v = 0; v < NV; ++v) {
          float* dst = c + i * ldc + W * v;
          store(dst, add ? load(dst) + acc[i][v] : acc[i][v]);
        }
      return;
    }
    float tile[MR][NR];
    std::memcpy(tile, acc, sizeof tile);
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < nr; ++j) {
        float* dst = c + i * ldc + j;
        *dst = add ? *dst + tile[i][j] : tile[i][j];
      }
  }

  static void pack_a(int mc, int kc, View a, float* out) {
    for (int ir = 0; ir < mc; ir += MR) {
      const int mr = std::min(MR, mc - ir);
      float* panel = out + static_cast<std::ptrdiff_t>(ir) * kc;
      if (a.cs == 1) {
        for (int i = 0; i < mr; ++i) {
          const float* row = a.at(ir + i, 0);
          for (int p = 0; p < kc; ++p) panel[p * MR + i] = row[p];
        }
      } else {
        for (int p = 0; p < kc; ++p)
          for (int i = 0; i < mr; ++i) panel[p * MR + i] = *a.at(ir + i, p);
      }
      for (int i = mr; i < MR; ++i)
        for (int p = 0; p < kc; ++p) panel[p * MR + i] = 0.f;
    }
  }

  static void pack_b(int kc, int nc, View b, float* out) {
    for (int jr = 0; jr < nc; jr += NR) {
      const int nr = std::min(NR, nc - jr);
      float* panel = out + static_cast<std::ptrdiff_t>(jr) * kc;
      if (b.cs == 1) {
        for (int p = 0; p < kc; ++p) {
          const float* row = b.at(p, jr);
          for (int j = 0; j < nr; ++j) panel[p * NR + j] = row[j];
          for (int j = nr; j < NR; ++j) panel[p * NR + j] = 0.f;
        }
      } else {
        for (int j = 0; j < nr; ++j) {
          const float* column = b.at(0, jr + j);
          for (int p = 0; p < kc; ++p) panel[p * NR + j] = column[p * b.rs];
        }
        for (int p = 0; p < kc; ++p)
          for (int j = nr; j < NR; ++j) panel[p * NR + j] = 0.f;
      }
    }
  }

  // B packed whole, for products that use it many times (a convolution's filter, in every tile of
  // rows): the panels of columns [jc, jc + NC) and depth [pc, pc + KC) start at jc * k + pc * (that
  // block's columns rounded up to NR). Blocks are packed on the pool's threads.
  static std::ptrdiff_t block_at(int k, int n, int jc, int pc) {
    const int nc = std::min(NC, n - jc);
    return static_cast<std::ptrdiff_t>(jc) * k + static_cast<std::ptrdiff_t>(pc) * ((nc + NR - 1) / NR * NR);
  }
  static void pack_whole_b(int k, int n, View b, PackedB& out) {
    out.data.resize(static_cast<std::size_t>((n + NR - 1) / NR * NR) * std::max(k, 0));
    const int column_blocks = (n + NC - 1) / NC, depth_blocks = (k + KC - 1) / KC;
    parallel_for(column_blocks * depth_blocks, [&](int i) {
      const int jc = i / depth_blocks * NC, pc = i % depth_blocks * KC;
      pack_b(std::min(KC, k - pc), std::min(NC, n - jc), View{b.at(pc, jc), b.rs, b.cs}, out.data.data() + block_at(k, n, jc, pc));
    });
  }

  // `packed`, when given, is B as pack_whole_b left it (for this kernel's NR).
  static void run(int m, int n, int k, View a, View b, float* c, std::ptrdiff_t ldc, bool add, const PackedB* packed = nullptr) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
      if (!add)
        for (int i = 0; i < m; ++i) std::memset(c + i * ldc, 0, sizeof(float) * n);
      return;
    }
    const int nc_max = (std::min(NC, n) + NR - 1) / NR * NR;  // whole panels, NC a multiple of NR or not
    float* packed_b = packed ? nullptr : packing_buffer(0, static_cast<std::size_t>(KC) * nc_max);
    float* packed_a = packing_buffer(1, static_cast<std::size_t>(KC) * MC);
    for (int jc = 0; jc < n; jc += NC) {
      const int nc = std::min(NC, n - jc);
      for (int pc = 0; pc < k; pc += KC) {
        const int kc = std::min(KC, k - pc);
        const float* panels = packed ? packed->data.data() + block_at(k, n, jc, pc) : packed_b;
        if (!packed) pack_b(kc, nc, View{b.at(pc, jc), b.rs, b.cs}, packed_b);
        const bool accumulate = add || pc > 0;
        // Whole blocks of MR rows are read where they lie, not packed first, wherever A's rows or
        // its columns lie side by side (or there is one panel of columns, each value of A used
        // once): packing A, a transposing copy of every value, took longer than the micro kernel's
        // strided reads from cache (a product [16384,256]x[256,64]: 3.1 ms packed, 1.3-1.4 read
        // where it lies; every U-Net convolution together, forward and both gradients: 64 against
        // 58.5 ms).
        const bool direct = n <= NR || a.cs == 1 || a.rs == 1;
        for (int ic = 0; ic < m; ic += MC) {
          const int mc = std::min(MC, m - ic);
          const int whole = direct ? mc / MR * MR : 0;
          for (int jr = 0; jr < nc && whole > 0; jr += NR)
            for (int ir = 0; ir < whole; ir += MR)
              micro(kc, a.at(ic + ir, pc), a.cs, a.rs, panels + static_cast<std::ptrdiff_t>(jr) * kc, c + (ic + ir) * ldc + jc + jr, ldc, MR,
                    std::min(NR, nc - jr), accumulate);
          if (whole == mc) continue;
          pack_a(mc - whole, kc, View{a.at(ic + whole, pc), a.rs, a.cs}, packed_a);
          for (int jr = 0; jr < nc; jr += NR)
            for (int ir = whole; ir < mc; ir += MR)
              micro(kc, packed_a + static_cast<std::ptrdiff_t>(ir - whole) * kc, MR, 1, panels + static_cast<std::ptrdiff_t>(jr) * kc,
                    c + (ic + ir) * ldc + jc + jr, ldc, std::min(MR, mc - ir), std::min(NR, nc - jr), accumulate);
        }
      }
    }
  }
};

}  // namespace
}  // namespace dck
