// Dropout kernel body, compiled per ISA. Plain 32-bit integer and float arithmetic in a
// branch-free loop: the compiler vectorises it for each ISA's flags.
#include "dropout/dropout.h"

namespace tensorops::dropout::TENSOROPS_ISA_NS {
namespace {

// A multiply-xorshift bijection on 32 bits (good avalanche, two multiplies).
inline uint32_t scramble(uint32_t x) {
  x ^= x >> 16;
  x *= 0x21f0aaadU;
  x ^= x >> 15;
  x *= 0x735a2d97U;
  x ^= x >> 15;
  return x;
}

template <class T>
void dropout_kernel(const T* in, T* out, int64_t n, uint32_t index_low, DropoutKeys keys, uint32_t drop_below,
                    T scale) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t h = scramble(scramble((index_low + static_cast<uint32_t>(i)) ^ keys.first) + keys.second);
    out[i] = in[i] * ((h >> 8) >= drop_below ? scale : T(0));
  }
}

}  // namespace

const DropoutKernels* kernel_table() {
  static const DropoutKernels table{dropout_kernel<float>, dropout_kernel<double>};
  return &table;
}

}  // namespace tensorops::dropout::TENSOROPS_ISA_NS
