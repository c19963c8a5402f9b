// The packed matrix product built for AVX-512 (16-float vectors, 32 registers: 12 rows by 32
// columns per inner kernel; narrower kernels for products with few columns). kernels.cc calls it
// only where the CPU reports AVX-512 F and VL.
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
// for up to 16, else two.
template <typename F>
void with_kernel(int n, F f) {
  if (n <= 8)
    f(Gemm<v8, 8, 1>{});
  else if (n <= 16)
    f(Gemm<v16, 12, 1>{});
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
