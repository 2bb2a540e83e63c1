// Embedding: out[i, :] = weight[indices[i], :] for every index in a tensor of any shape.
//
// A gather of whole rows: the work is memory traffic, so the driver copies each row with one
// memcpy-sized loop and splits the indices across threads. Every index is checked against
// [0, num_embeddings) before the first row is written, so a bad index raises IndexError and
// leaves `out` untouched. No SIMD variants: the row copy is what memcpy already does best.
#pragma once

#include "core/tensor.h"

namespace tensorops::embedding {

// indices: int32 or int64, any shape and strides; weight: 2-D with unit column stride;
// out: C-contiguous of shape indices.shape + [embedding_dim], weight's dtype.
void embedding(const TensorView& indices, const TensorView& weight, const TensorView& out);

}  // namespace tensorops::embedding
