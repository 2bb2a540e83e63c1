// The sum of a contiguous run, shared by the reduction and normalisation kernels.
//
// Eight vector accumulators: the sweep is bound by loads and add latency, not arithmetic.
// They are combined pairwise in a fixed order, so the bits depend only on the data and n.
// The function takes no Vec argument, so its name would be the same in every ISA's
// compilation: it lives in an anonymous namespace to keep each ISA's copy to itself.
#pragma once

#include <cstdint>

#include "core/simd/vec.h"

namespace tensorops::simd {
namespace {

template <class T>
T sum(const T* x, int64_t n) {
  using V = Vec<T>;
  constexpr int64_t W = V::width;
  V a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
  V a4 = V::zero(), a5 = V::zero(), a6 = V::zero(), a7 = V::zero();
  int64_t i = 0;
  for (; i + 8 * W <= n; i += 8 * W) {
    a0 = a0 + V::load(x + i);
    a1 = a1 + V::load(x + i + W);
    a2 = a2 + V::load(x + i + 2 * W);
    a3 = a3 + V::load(x + i + 3 * W);
    a4 = a4 + V::load(x + i + 4 * W);
    a5 = a5 + V::load(x + i + 5 * W);
    a6 = a6 + V::load(x + i + 6 * W);
    a7 = a7 + V::load(x + i + 7 * W);
  }
  for (; i + W <= n; i += W) a0 = a0 + V::load(x + i);
  if (i < n) a1 = a1 + V::load_partial(x + i, n - i);
  return reduce_add(((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)));
}

}  // namespace
}  // namespace tensorops::simd
