#include "dropout/dropout.h"

#include <algorithm>
#include <cmath>

#include "core/dispatch.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/streaming.h"

namespace tensorops::dropout {

TENSOROPS_KERNEL_TABLES(DropoutKernels)

namespace {

constexpr int64_t kGrain = 1 << 15;
constexpr uint64_t kIndexBlock = uint64_t(1) << 32;

uint32_t mix_key(uint32_t value) {
  value ^= value >> 16;
  value *= 0x7feb352dU;
  value ^= value >> 15;
  value *= 0x846ca68bU;
  value ^= value >> 16;
  return value;
}

// The kernel's key for the 2^32 indices that share index_high: every bit of the seed and of
// index_high reaches every bit of the key.
uint32_t key_for(uint64_t seed, uint32_t index_high) {
  const uint32_t low = mix_key(static_cast<uint32_t>(seed) ^ 0x9e3779b9U);
  return mix_key(low ^ mix_key(static_cast<uint32_t>(seed >> 32) + 0x7f4a7c15U * (index_high + 1U)));
}

template <class T, class Kernel>
void run(Kernel kernel, const TensorView& input, const TensorView& output, double p, uint64_t seed, uint64_t offset) {
  const T* in = input.ptr<const T>();
  T* out = output.ptr<T>();
  const auto drop_below = static_cast<uint32_t>(std::llround(p * 16777216.0));
  const T scale = static_cast<T>(1.0 / (1.0 - p));
  const bool stream = use_streaming<T>(output);
  parallel_for(0, input.numel(), kGrain, [&](int64_t begin, int64_t end) {
    // Split at 2^32 index boundaries so each kernel call sees one high half.
    while (begin < end) {
      const uint64_t index = offset + static_cast<uint64_t>(begin);
      const uint64_t room = kIndexBlock - (index & (kIndexBlock - 1));
      const int64_t count = static_cast<int64_t>(std::min<uint64_t>(room, static_cast<uint64_t>(end - begin)));
      kernel(in + begin, out + begin, count, static_cast<uint32_t>(index),
             key_for(seed, static_cast<uint32_t>(index >> 32)), drop_below, scale, stream);
      begin += count;
    }
    fence_streamed_stores(stream);
  });
}

}  // namespace

void dropout(const TensorView& in, const TensorView& out, double p, uint64_t seed, uint64_t offset) {
  TENSOROPS_CHECK(in.is_contiguous() && out.is_contiguous(), "dropout: expected contiguous arrays");
  TENSOROPS_CHECK(p > 0.0 && p < 1.0, "dropout: the kernel takes 0 < p < 1");
  const auto& k = select_kernels(kernel_tables());
  if (in.dtype == DType::float32)
    run<float>(k.dropout_f32, in, out, p, seed, offset);
  else
    run<double>(k.dropout_f64, in, out, p, seed, offset);
}

}  // namespace tensorops::dropout
