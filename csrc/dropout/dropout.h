// Dropout: out[i] = in[i] * (keep[i] ? 1 / (1 - p) : 0), with keep[i] drawn independently
// with probability 1 - p.
//
// The mask comes from a counter-based generator: keep[i] is a pure function of the seed and
// the element's global index (the generator's offset plus i), so the same seed gives the
// same mask for any thread count, chunking or ISA, and no state is shared between threads.
// The hash is two rounds of a 32-bit multiply-xorshift bijection over the low 32 bits of the
// index, keyed by the seed and the high 32 bits; 24 of its bits are compared with
// round(p * 2^24). All arithmetic is 32-bit integer so the loop vectorises on every ISA.
// Multiplying (rather than selecting 0) keeps torch's NaN behaviour: a dropped NaN or inf
// stays NaN, as torch's input * mask does.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tensorops::dropout {

struct DropoutKeys {
  uint32_t first;   // keyed by the seed's low half
  uint32_t second;  // keyed by the seed's high half and the index's high half
};

struct DropoutKernels {
  // n elements starting at global index (index_high << 32) + index_low; index_low + n <= 2^32.
  void (*dropout_f32)(const float* in, float* out, int64_t n, uint32_t index_low, DropoutKeys keys,
                      uint32_t drop_below, float scale);
  void (*dropout_f64)(const double* in, double* out, int64_t n, uint32_t index_low, DropoutKeys keys,
                      uint32_t drop_below, double scale);
};

// Applies dropout with probability p (0 < p < 1) to contiguous `in`, writing contiguous `out`,
// with the mask of elements [offset, offset + numel) of the stream keyed by `seed`.
void dropout(const TensorView& in, const TensorView& out, double p, uint64_t seed, uint64_t offset);

}  // namespace tensorops::dropout
