// The packed matrix product built for AVX-512 (16-float vectors, 32 registers: 12 rows by 32
// columns per inner kernel, or 8 by 48; narrower kernels for products with few columns).
// kernels.cc calls it only where the CPU reports AVX-512 F and VL.
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx2,fma"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx512f,avx512vl,avx2,fma")
#endif
#include "gemm.h"

namespace dck {
namespace {

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

// The inner kernel's shape for n columns: one 8-float vector wide for up to 8, one 16-float vector
// for up to 16, three for 33 to 48 (two would leave a panel of 32 columns a half empty: the input
// gradient of a U-Net's 48->16 conv at 4x128x128 took 4.2 ms so, 2.6 with three), else two.
template <typename F>
void with_kernel(int n, F f) {
  if (n <= 8)
    f(Gemm<v8, 8, 1>{});
  else if (n <= 16)
    f(Gemm<v16, 12, 1>{});
  else if (n > 32 && n <= 48)
    f(Gemm<v16, 8, 3>{});
  else
    f(Gemm<v16, 12, 2>{});
}

}  // namespace

void gemm_avx512(int m, int n, int k, View a, View b, float* c, std::ptrdiff_t ldc, bool add, const PackedB* packed) {
  with_kernel(n, [&](auto kernel) { kernel.run(m, n, k, a, b, c, ldc, add, packed); });
}

void pack_b_avx512(int k, int n, View b, PackedB& out) {
  with_kernel(n, [&](auto kernel) { kernel.pack_whole_b(k, n, b, out); });
}

}  // namespace dck

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif
