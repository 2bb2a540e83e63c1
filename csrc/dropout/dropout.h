// Dropout: out[i] = in[i] * (keep[i] ? 1 / (1 - p) : 0), with keep[i] drawn independently
// with probability 1 - p.
//
// The mask comes from a counter-based generator: keep[i] is a pure function of the seed and
// the element's global index (the generator's offset plus i), so the same seed gives the
// same mask for any thread count, chunking or ISA, and no state is shared between threads.
// The hash is one round of a 32-bit multiply-xorshift bijection of the low 32 bits of the
// index xored with a key; the key mixes the seed and the index's high 32 bits. 24 of the hash's
// bits are compared with round(p * 2^24). All arithmetic is 32-bit integer so the loop
// vectorises on every ISA. A second round (four multiplies per element instead of two) made
// the kernel compute-bound: 16 Mi float32 took 8.1 ms against 5.2 ms with one round, which
// runs at the speed of memory.
// Outputs of kStreamMinBytes and more (kStreamMinBytesThreaded on more than one thread) go out
// with streaming stores (core/streaming.h).
// Multiplying (rather than selecting 0) keeps torch's NaN behaviour: a dropped NaN or inf
// stays NaN, as torch's input * mask does.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace tensorops::dropout {

struct DropoutKernels {
  // n elements starting at global index (index_high << 32) + index_low, index_low + n <= 2^32,
  // with the key of (seed, index_high); stream: whole vectors go out with non-temporal stores
  // and the caller fences.
  void (*dropout_f32)(const float* in, float* out, int64_t n, uint32_t index_low, uint32_t key, uint32_t drop_below,
                      float scale, bool stream);
  void (*dropout_f64)(const double* in, double* out, int64_t n, uint32_t index_low, uint32_t key,
                      uint32_t drop_below, double scale, bool stream);
};

// Applies dropout with probability p (0 < p < 1) to contiguous `in`, writing contiguous `out`,
// with the mask of elements [offset, offset + numel) of the stream keyed by `seed`.
void dropout(const TensorView& in, const TensorView& out, double p, uint64_t seed, uint64_t offset);

}  // namespace tensorops::dropout
