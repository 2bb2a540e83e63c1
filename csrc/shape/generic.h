// Byte-moving kernels of the shape family, compiled per ISA by the tiny generic.cc /
// x86_avx2.cc / x86_avx512.cc files beside this one.
//
// Vec<T> carries arithmetic, not shuffles, so the register transposes below use the ISA's
// intrinsics directly, selected by TENSOROPS_ISA_ID; everything else is plain C++ that the
// compiler vectorises with the flags of the file that includes it.
#include <algorithm>
#include <cstdint>
#include <cstring>

#if TENSOROPS_ISA_ID >= 1
#include <immintrin.h>
#endif
#if TENSOROPS_ISA_ID == 1
#include "core/simd/x86_avx2.h"
#endif

#include "core/streaming.h"
#include "shape/shape.h"

namespace tensorops::shape::TENSOROPS_ISA_NS {
namespace {

template <class U>
void strided_copy(const void* src_bytes, int64_t src_stride, void* dst_bytes, int64_t dst_stride, int64_t n) {
  const U* src = static_cast<const U*>(src_bytes);
  U* dst = static_cast<U*>(dst_bytes);
  if (dst_stride == 1) {
    if (src_stride == 1) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(U));
    } else if (src_stride == 0) {  // an expanded (broadcast) dim
      const U value = *src;
      for (int64_t i = 0; i < n; ++i) dst[i] = value;
    } else if (src_stride == -1) {  // a reversed dim: its own loop so it vectorises
      for (int64_t i = 0; i < n; ++i) dst[i] = src[-i];
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i * src_stride];
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) dst[i * dst_stride] = src[i * src_stride];
}

// A tile is one cache line of U square, so each line of the tile's source rows and
// destination rows is read or written whole, whatever the (often power-of-two) leading
// dimensions do to cache associativity.
template <class U>
constexpr int64_t kTile = 64 / static_cast<int64_t>(sizeof(U));

template <class U>
void transpose_scalar(const U* src, int64_t src_ld, U* dst, int64_t dst_ld, int64_t rows, int64_t cols) {
  for (int64_t b = 0; b < cols; ++b)
    for (int64_t a = 0; a < rows; ++a) dst[a * dst_ld + b] = src[b * src_ld + a];
}

#if TENSOROPS_ISA_ID == 2
// GCC 12's own AVX-512 headers pass an undefined register as the merge source of unmasked
// shuffles and then warn about it; the warning is about the header, not this code.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"

// Stream: non-temporal stores of whole, aligned cache lines (see transpose() below).
template <bool Stream>
inline void store(float* p, __m512 v) {
  if constexpr (Stream) _mm512_stream_ps(p, v); else _mm512_storeu_ps(p, v);
}
template <bool Stream>
inline void store(double* p, __m512d v) {
  if constexpr (Stream) _mm512_stream_pd(p, v); else _mm512_storeu_pd(p, v);
}

// 16 x 16 four-byte elements: unpack pairs, then 64-bit pairs, then 128-bit lanes twice. After
// the first two stages u[g][c] holds, in 128-bit lane L, column 4L + c of rows 4g..4g+3.
template <bool Stream>
inline void transpose_tile(const uint32_t* src, int64_t src_ld, uint32_t* dst, int64_t dst_ld) {
  __m512 u[4][4];
  for (int g = 0; g < 4; ++g) {
    __m512 r[4];
    for (int i = 0; i < 4; ++i) r[i] = _mm512_loadu_ps(reinterpret_cast<const float*>(src + (4 * g + i) * src_ld));
    const __m512d t0 = _mm512_castps_pd(_mm512_unpacklo_ps(r[0], r[1]));
    const __m512d t1 = _mm512_castps_pd(_mm512_unpackhi_ps(r[0], r[1]));
    const __m512d t2 = _mm512_castps_pd(_mm512_unpacklo_ps(r[2], r[3]));
    const __m512d t3 = _mm512_castps_pd(_mm512_unpackhi_ps(r[2], r[3]));
    u[g][0] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
    u[g][1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
    u[g][2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
    u[g][3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
  }
  float* out = reinterpret_cast<float*>(dst);
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[0][c], u[1][c], 0x88);
    const __m512 w0 = _mm512_shuffle_f32x4(u[0][c], u[1][c], 0xdd);
    const __m512 v2 = _mm512_shuffle_f32x4(u[2][c], u[3][c], 0x88);
    const __m512 w2 = _mm512_shuffle_f32x4(u[2][c], u[3][c], 0xdd);
    store<Stream>(out + c * dst_ld, _mm512_shuffle_f32x4(v0, v2, 0x88));
    store<Stream>(out + (4 + c) * dst_ld, _mm512_shuffle_f32x4(w0, w2, 0x88));
    store<Stream>(out + (8 + c) * dst_ld, _mm512_shuffle_f32x4(v0, v2, 0xdd));
    store<Stream>(out + (12 + c) * dst_ld, _mm512_shuffle_f32x4(w0, w2, 0xdd));
  }
}

// 8 x 8 eight-byte elements: after the unpack, t[p][c] holds, in 128-bit lane L, column
// 2L + c of rows 2p, 2p+1.
template <bool Stream>
inline void transpose_tile(const uint64_t* src, int64_t src_ld, uint64_t* dst, int64_t dst_ld) {
  __m512d t[4][2];
  for (int p = 0; p < 4; ++p) {
    const __m512d r0 = _mm512_loadu_pd(reinterpret_cast<const double*>(src + (2 * p) * src_ld));
    const __m512d r1 = _mm512_loadu_pd(reinterpret_cast<const double*>(src + (2 * p + 1) * src_ld));
    t[p][0] = _mm512_unpacklo_pd(r0, r1);
    t[p][1] = _mm512_unpackhi_pd(r0, r1);
  }
  double* out = reinterpret_cast<double*>(dst);
  for (int c = 0; c < 2; ++c) {
    const __m512d x0 = _mm512_shuffle_f64x2(t[0][c], t[1][c], 0x88);
    const __m512d y0 = _mm512_shuffle_f64x2(t[0][c], t[1][c], 0xdd);
    const __m512d x2 = _mm512_shuffle_f64x2(t[2][c], t[3][c], 0x88);
    const __m512d y2 = _mm512_shuffle_f64x2(t[2][c], t[3][c], 0xdd);
    store<Stream>(out + c * dst_ld, _mm512_shuffle_f64x2(x0, x2, 0x88));
    store<Stream>(out + (2 + c) * dst_ld, _mm512_shuffle_f64x2(y0, y2, 0x88));
    store<Stream>(out + (4 + c) * dst_ld, _mm512_shuffle_f64x2(x0, x2, 0xdd));
    store<Stream>(out + (6 + c) * dst_ld, _mm512_shuffle_f64x2(y0, y2, 0xdd));
  }
}
#pragma GCC diagnostic pop
#elif TENSOROPS_ISA_ID == 1
template <bool Stream>
inline void store(float* p, __m256 v) {
  if constexpr (Stream) _mm256_stream_ps(p, v); else _mm256_storeu_ps(p, v);
}
template <bool Stream>
inline void store(double* p, __m256d v) {
  if constexpr (Stream) _mm256_stream_pd(p, v); else _mm256_storeu_pd(p, v);
}

// 8 x 8 four-byte elements, returned as the eight destination rows.
inline void transpose8x8(const uint32_t* src, int64_t src_ld, __m256 rows[8]) {
  simd::x86_avx2::transpose8(reinterpret_cast<const float*>(src), src_ld, 8, 8, rows);
}

// 4 x 4 eight-byte elements, returned as the four destination rows.
inline void transpose4x4(const uint64_t* src, int64_t src_ld, __m256d rows[4]) {
  const __m256d r0 = _mm256_loadu_pd(reinterpret_cast<const double*>(src));
  const __m256d r1 = _mm256_loadu_pd(reinterpret_cast<const double*>(src + src_ld));
  const __m256d r2 = _mm256_loadu_pd(reinterpret_cast<const double*>(src + 2 * src_ld));
  const __m256d r3 = _mm256_loadu_pd(reinterpret_cast<const double*>(src + 3 * src_ld));
  const __m256d lo01 = _mm256_unpacklo_pd(r0, r1), hi01 = _mm256_unpackhi_pd(r0, r1);
  const __m256d lo23 = _mm256_unpacklo_pd(r2, r3), hi23 = _mm256_unpackhi_pd(r2, r3);
  rows[0] = _mm256_permute2f128_pd(lo01, lo23, 0x20);
  rows[1] = _mm256_permute2f128_pd(hi01, hi23, 0x20);
  rows[2] = _mm256_permute2f128_pd(lo01, lo23, 0x31);
  rows[3] = _mm256_permute2f128_pd(hi01, hi23, 0x31);
}

// A tile is four register transposes of H x H, two across each destination line (the left
// and right halves of the tile's rows a..a+H). Both halves of a line are stored back to
// back: a streamed line whose halves are written far apart leaves the core as two partial
// writes once the write-combining buffers run out (the lines of a tile are more than there
// are buffers), and the transposed copy of a 4096 x 4096 float matrix ran at 1 GB/s, slower
// than the scalar loop.
template <bool Stream, int H, class U, class Out, class Reg>
inline void transpose_tile_by_halves(const U* src, int64_t src_ld, Out* out, int64_t dst_ld,
                                     void (*half)(const U*, int64_t, Reg*)) {
  for (int a = 0; a < 2 * H; a += H) {
    Reg left[H], right[H];
    half(src + a, src_ld, left);
    half(src + H * src_ld + a, src_ld, right);
    for (int i = 0; i < H; ++i) {
      store<Stream>(out + (a + i) * dst_ld, left[i]);
      store<Stream>(out + (a + i) * dst_ld + H, right[i]);
    }
  }
}

template <bool Stream>
inline void transpose_tile(const uint32_t* src, int64_t src_ld, uint32_t* dst, int64_t dst_ld) {
  transpose_tile_by_halves<Stream, 8>(src, src_ld, reinterpret_cast<float*>(dst), dst_ld, transpose8x8);
}

template <bool Stream>
inline void transpose_tile(const uint64_t* src, int64_t src_ld, uint64_t* dst, int64_t dst_ld) {
  transpose_tile_by_halves<Stream, 4>(src, src_ld, reinterpret_cast<double*>(dst), dst_ld, transpose4x4);
}
#endif

template <bool Stream, class U>
void transpose_full_tile(const U* src, int64_t src_ld, U* dst, int64_t dst_ld) {
#if TENSOROPS_ISA_ID >= 1
  if constexpr (sizeof(U) >= 4) {
    transpose_tile<Stream>(src, src_ld, dst, dst_ld);
    return;
  }
#endif
  transpose_scalar(src, src_ld, dst, dst_ld, kTile<U>, kTile<U>);
}

// Each tile uses every line it touches in full, so blocking is not about cache reuse but about
// the hardware prefetchers, which follow sequential lines within a page: tiles walk down the
// rows (a) of a block only kColBlockBytes wide (b), so the block's few source rows are each
// read sequentially, a line at a time, while its destination rows are written in short runs.
constexpr int64_t kColBlockBytes = 256;

template <bool Stream, class U>
void transpose_blocks(const U* src, int64_t src_ld, U* dst, int64_t dst_ld, int64_t rows, int64_t cols) {
  constexpr int64_t T = kTile<U>;
  constexpr int64_t B = kColBlockBytes / static_cast<int64_t>(sizeof(U));
  for (int64_t b0 = 0; b0 < cols; b0 += B) {
    const int64_t b_end = cols - b0 < B ? cols : b0 + B;
    for (int64_t a = 0; a < rows; a += T) {
      const int64_t ta = rows - a < T ? rows - a : T;
      int64_t b = b0;
      if (ta == T)
        for (; b + T <= b_end; b += T)
          transpose_full_tile<Stream>(src + b * src_ld + a, src_ld, dst + a * dst_ld + b, dst_ld);
      if (b < b_end) transpose_scalar(src + b * src_ld + a, src_ld, dst + a * dst_ld + b, dst_ld, ta, b_end - b);
    }
  }
}

// stream: the destination is too large to stay in cache, so full tiles are written with
// non-temporal stores, which skip the read-for-ownership of every destination line and, where
// the leading dimension is a power of two, the cache-set conflicts of a tile's 16 destination
// rows (about twice as fast on a 4096 x 4096 float transpose). They need each tile row to
// start a cache line: the columns before the first aligned one go the ordinary way.
template <class U>
void transpose(const void* src_bytes, int64_t src_ld, void* dst_bytes, int64_t dst_ld, int64_t rows, int64_t cols,
               bool stream) {
  const U* src = static_cast<const U*>(src_bytes);
  U* dst = static_cast<U*>(dst_bytes);
#if TENSOROPS_ISA_ID >= 1
  constexpr int64_t size = static_cast<int64_t>(sizeof(U));
  if (size >= 4 && stream && dst_ld * size % kCacheLineBytes == 0 && reinterpret_cast<uintptr_t>(dst) % size == 0) {
    const int64_t head = elements_to_cache_line(dst, cols);
    transpose_scalar(src, src_ld, dst, dst_ld, rows, head);
    transpose_blocks<true>(src + head * src_ld, src_ld, dst + head, dst_ld, rows, cols - head);
    _mm_sfence();  // streamed lines are visible to other threads once the parallel region ends
    return;
  }
#endif
  transpose_blocks<false>(src, src_ld, dst, dst_ld, rows, cols);
}

// `rows` runs of `bytes` (<= kShortRunBytes) contiguous bytes, a row's runs src_ld and
// dst_ld bytes apart (cat along a short last dim: 262144 runs of 32 bytes took 8 ns a run
// as a memcpy call each, 2.6x torch's time). AVX-512 moves a run with one masked load and
// store; elsewhere runs of the common sizes are fixed-size copies the compiler inlines.
template <int64_t kBytes>
void copy_fixed_runs(const char* src, int64_t src_ld, char* dst, int64_t dst_ld, int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_ld, src + r * src_ld, kBytes);
}

void copy_short_runs(const void* src_bytes, int64_t src_ld, void* dst_bytes, int64_t dst_ld, int64_t rows,
                     int64_t bytes) {
  const char* src = static_cast<const char*>(src_bytes);
  char* dst = static_cast<char*>(dst_bytes);
#if TENSOROPS_ISA_ID == 2
  static_assert(kShortRunBytes <= 64, "a short run is one zmm register");
  const __mmask64 run = bytes >= 64 ? ~__mmask64{0} : (__mmask64{1} << bytes) - 1;
  for (int64_t r = 0; r < rows; ++r)
    _mm512_mask_storeu_epi8(dst + r * dst_ld, run, _mm512_maskz_loadu_epi8(run, src + r * src_ld));
#else
  switch (bytes) {
    case 4: return copy_fixed_runs<4>(src, src_ld, dst, dst_ld, rows);
    case 8: return copy_fixed_runs<8>(src, src_ld, dst, dst_ld, rows);
    case 12: return copy_fixed_runs<12>(src, src_ld, dst, dst_ld, rows);
    case 16: return copy_fixed_runs<16>(src, src_ld, dst, dst_ld, rows);
    case 24: return copy_fixed_runs<24>(src, src_ld, dst, dst_ld, rows);
    case 32: return copy_fixed_runs<32>(src, src_ld, dst, dst_ld, rows);
    case 48: return copy_fixed_runs<48>(src, src_ld, dst, dst_ld, rows);
    case 64: return copy_fixed_runs<64>(src, src_ld, dst, dst_ld, rows);
    default:
      for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * dst_ld, src + r * src_ld, static_cast<size_t>(bytes));
  }
#endif
}

}  // namespace

const ShapeKernels* kernel_table() {
  static const ShapeKernels table{
      {strided_copy<uint8_t>, strided_copy<uint32_t>, strided_copy<uint64_t>},
      {transpose<uint8_t>, transpose<uint32_t>, transpose<uint64_t>},
      copy_short_runs,
  };
  return &table;
}

}  // namespace tensorops::shape::TENSOROPS_ISA_NS
