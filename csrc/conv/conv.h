// Convolution: conv2d and conv_transpose2d on NCHW arrays, with PyTorch's semantics
// (cross-correlation, zero padding, stride, dilation, groups).
//
// Convolution is a matrix product, so it rides on the GEMM engine (gemm/gemm.h). For one
// image and one group, with M = output channels, N = output pixels and K = input channels x
// kernel taps,  out[M, N] = filter[M, K] @ im2col[K, N]:  the filter is the A operand,
// packed once into MR-row panels (PackedA; a module keeps it across calls), and the output
// plane of NCHW is exactly C with row stride OH*OW, so results land in place, with the bias
// (a per-row addend), the residual and the activation fused into the GEMM epilogue while
// each tile is in L1. The shape classes differ only in how B is produced:
//
//   1x1, stride 1, no padding: B is the input image itself ([C_in, H*W], read in place);
//     with at most MR output channels (and a plane of at most 4096 pixels, or at most 64
//     input channels) the image streams through that one row tile panel by panel rather
//     than being packed, since no packed element would be read twice. Small planes whose
//     pixels would fill the NR-column panels only partly (7x7: 49 of 64), with enough
//     channels, take the shifted-window path below instead, its tiles running across rows
//     and images (pointwise_window in conv.cc).
//   more than one tap, any stride (the shifted-window path): a band of input rows is copied
//     once into a zero-padded buffer, one plane per stride phase, and every tap's im2col
//     rows are slices of it at a fixed offset, read in place by a microkernel that sums all
//     the taps of a block of channels in registers (conv2d_shifted in conv.cc). The copy is
//     one input's worth, not KH*KW of them. When the output channels fill the vector lanes
//     the product is computed transposed (output pixels as C's rows, channels across the
//     lanes, the band as the broadcast operand), so no lane is spent on padding columns, and
//     the pixel-major tile is transposed into the NCHW output as it is stored; there a tile
//     also leaves out the taps its rows would read from the padding (the filter rows above
//     and below the image, the columns left and right of its edge pixels).
//   general (1x1 with stride or padding, bands too large for the cache): B is an implicit
//     im2col. The GEMM asks the Im2col block source for one
//     KC x NC block at a time and the pack_im2col kernel writes it straight into the
//     microkernel's NR-column panels from the image (zeros where a tap falls in the
//     padding), so the workspace is one cache-sized block per thread, never a whole-image
//     im2col matrix. The pixel runs of a block (where output rows and panels break) are
//     worked out once per block and replayed for every K row.
//   depthwise (groups == C_in, one input channel per group, any channel multiplier): no
//     reduction over channels, so GEMM has nothing to block; dedicated kernels work on one
//     plane at a time, vectorised along the output row. 3x3 stride 1 keeps its taps in
//     registers; every other kernel, stride and dilation first copies the input rows a band
//     of output rows reads into zero-bordered rows, one per column phase of the stride, so
//     that each tap is a plain load at a fixed offset (depthwise_padded). Planes too small
//     for rows (MobileNet's 7x7 and 14x14), and filters 5 to 13 wide at unit column stride
//     (or as tall, one wide) on planes of any size (ConvNeXt's 7x7, large-kernel nets'),
//     put one channel in each vector lane instead, where the ISA has that kernel
//     (depthwise_channels): a row's loaded input column then serves every tap across the
//     filter's width without the lane shifts that rows need.
//   transposed: out[oy] gathers input rows iy with oy = iy*s - p + ky*d. Splitting the
//     output into its s_h x s_w stride phases (oy = ry + s*j) makes each phase an ordinary
//     stride-1 convolution of the input with the subset of taps whose ky*d is congruent to
//     ry + p (mod s), at input row j + (ry + p - ky*d)/s. Each phase is one GEMM over that
//     sub-filter (packed per phase), computed into a cache-sized tile: no col2im, no
//     scatter-add, no multiplications by the zeros that a dilated-input formulation would
//     insert. Every phase is a stride-1 correlation with taps at fixed offsets, so when the
//     phase grids are at least a microkernel panel wide one zero-padded band of input rows
//     serves every phase of a band of grid rows, each tap a slice of it read in place by the
//     shifted-window microkernel (conv_transpose2d_window); narrower grids (a generator's
//     first layers) take an implicit im2col per phase whose bands run across images. A band
//     holds the tiles of every phase for the same grid rows, so its output
//     rows are assembled in order (columns interleaved from the column phases, bias added)
//     and each plane's run of rows is stored whole, as aligned vectors that bypass the cache
//     when the output is large.
//   transposed, images small next to the filter (a generator's 1x1 latent or first 4x4
//     layers at small batch): every input pixel times the whole filter is one GEMM with the
//     filter read in place as B (no packing, no products of padding), and each output
//     gathers its few products from that cache-sized result
//     (conv_transpose2d_filter_in_place). A cost in multiply-adds picks it over the phase
//     path per call.
//   transposed, small images whose border products mostly leave the output (a generator's
//     4x4/2 layers: 23% of the products): the input pixels are grouped by the run of taps
//     that stays inside the output along each axis, and each group multiplies only those
//     taps, one GEMM per (group, tap) against that tap's slice of the filter, packed from a
//     tap-major copy (once for a kept filter, for the call for a weight given as an array);
//     each output gathers its products across the channels and the pixel-major tile is
//     transposed into NCHW (conv_transpose2d_border_classes).
//
// A filter packed for one call carves its panel sets from one block of the buffer pool
// (gemm::PanelArena), whose pages stay mapped from call to call, and streams them out when
// it is larger than the cache.
//
// Threads: conv2d's shifted-window path splits (image, group, band of output rows, and part
// of the output channels when that leaves a thread idle); its other paths hand gemm_batch
// one problem per (image, group), which it splits further on tile boundaries when there are
// fewer problems than threads; conv_transpose2d splits
// (image, group, band of output rows). Each element is computed by the same sequence of
// operations whatever the thread count.
//
// Arguments are validated in Python with torch's wording; the checks here keep a bad call
// from reaching a kernel.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"
#include "gemm/gemm.h"

namespace tensorops::conv {

using Pair = std::array<int64_t, 2>;    // (height, width)
using Shape4 = std::array<int64_t, 4>;  // a filter's shape

// Everything about one call that is not data. padding is (top, left); the bottom/right
// padding is whatever the output size implies (asymmetric "same" padding, output_padding).
struct ConvShape {
  int64_t batch = 0, in_channels = 0, out_channels = 0, groups = 1;
  Pair in{}, out{}, kernel{};
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  bool transposed = false;
};

// A filter prepared once: GEMM panels per group (and per stride phase when transposed), or
// a contiguous copy of the taps for depthwise. Tied to the stride, padding and dilation it
// was made for when transposed (they select each phase's taps).
class PackedConvWeight {
 public:
  // The panel sets a conv2d filter holds: one kept for many calls (a module's) holds both
  // the shifted-window and the general path's (a 1x1 filter makes its shifted-window set on
  // the first call that takes that path); one packed for a single call (a functional
  // call's) holds only the set its path reads. `border`: conv_transpose2d's per-tap panels
  // of the border-class path, for one call.
  enum class Panels { all, general, shifted, border };
  // weight: [C_out, C_in/groups, KH, KW], or [C_in, C_out/groups, KH, KW] when transposed.
  PackedConvWeight(const TensorView& weight, int64_t groups, bool transposed, Pair stride, Pair padding, Pair dilation,
                   Panels panels = Panels::all);
  ~PackedConvWeight();
  DType dtype() const { return dtype_; }
  int64_t groups() const { return groups_; }
  bool transposed() const { return transposed_; }
  Pair stride() const { return stride_; }
  Pair padding() const { return padding_; }
  Pair dilation() const { return dilation_; }
  const Shape4& weight_shape() const { return shape_; }
  int64_t out_channels() const { return transposed_ ? shape_[1] * groups_ : shape_[0]; }
  bool depthwise() const { return depthwise_; }
  // One input channel per group and several groups: no reduction over channels, so the
  // depthwise kernel rather than a GEMM with K = KH * KW.
  static bool is_depthwise(const TensorView& weight, int64_t groups, bool transposed) {
    return !transposed && groups > 1 && weight.ndim == 4 && weight.shape[1] == 1;
  }

  // Implementation detail shared with conv.cc: the per-dtype filter storage.
  template <class T>
  struct Filters;
  template <class T>
  const Filters<T>& filters() const;

 private:
  DType dtype_;
  int64_t groups_;
  bool transposed_, depthwise_;
  Pair stride_, padding_, dilation_;
  Shape4 shape_;
  std::unique_ptr<Filters<float>> f32_;
  std::unique_ptr<Filters<double>> f64_;
};

// out (C-contiguous [N, C_out, OH, OW]) = act(conv(input, weight) + bias + residual).
// input: [N, C_in, H, W], any strides; bias: [C_out] or null; residual: [N, C_out, OH, OW]
// whose (OH, OW) dims fold into one (zero strides allowed) or null.
struct ConvArgs {
  const TensorView* bias = nullptr;
  const TensorView* residual = nullptr;
  gemm::Activation activation = gemm::Activation::none;
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};
void conv2d(const TensorView& input, const PackedConvWeight& weight, const TensorView& out, const ConvArgs& args);
// weight: [C_in, C_out/groups, KH, KW] packed with transposed = true and args' geometry.
void conv_transpose2d(const TensorView& input, const PackedConvWeight& weight, const TensorView& out,
                      const ConvArgs& args);

// The same with the weight as an array (a functional call): packed for this call (only the
// panel set its path reads), or, for a transposed convolution of a few small images, read
// where it lies (conv_transpose2d_filter_in_place in conv.cc).
void conv2d(const TensorView& input, const TensorView& weight, const TensorView& out, const ConvArgs& args);
void conv_transpose2d(const TensorView& input, const TensorView& weight, const TensorView& out, const ConvArgs& args);

// ---- kernel tables (one per ISA, see generic.h) -------------------------------------------

// B(k, p) of an implicit im2col, k = (channel, ty, tx), p = (y, x) a pixel of the output
// grid: the input at plane `channel`, row y*stride_y + row_offset[ty], column
// x*stride_x + col_offset[tx]; zero outside the h x w plane.
template <class T>
struct Im2colView {
  const T* input;
  int64_t channel_stride, row_stride, col_stride, h, w;
  int64_t stride_y, stride_x;
  const int64_t* row_offset;
  int64_t taps_y;
  const int64_t* col_offset;
  int64_t taps_x;
};

// A run of pixels of one output row that lands in one panel row: panel element `dst`
// (panel * panel_stride + column) takes pixels (y, x .. x + length) of the grid of the image
// at input + image_offset. `kind` says what the run reads for every tap: zeros (the fill
// past the last column), columns all inside the input row (a plain copy when the column
// step is 1), or columns some of which fall in the padding.
struct PixelRun {
  enum Kind : int64_t { padding = 0, inside = 1, clipped = 2 };
  int64_t dst, image_offset, y, x, length;
  Kind kind;
};

// Depthwise: one output plane from one input plane and its KH x KW taps.
template <class T>
struct DepthwisePlane {
  const T* input;  // element (0, 0) of the input plane
  int64_t row_stride, col_stride, h, w;
  const T* taps;   // KH x KW, row-major
  T bias;          // every output starts from it
  T* out;          // C-contiguous OH x OW
  int64_t out_h, out_w, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w;
};

// Whether the depthwise kernel with one channel per lane (`lanes` of them) reuses each input
// column it loads across the filter's width (unit column stride and dilation, an odd width
// from 5 to the widest whose taps leave registers for runs of 8 outputs: 13 with AVX-512's
// 32 registers of 16 lanes, 7 with AVX2's 16 of 8; narrower filters load about once per
// multiply-add either way): then it beats the row kernels on planes of any size, where
// otherwise only on small ones.
constexpr int64_t lanes_widest_filter(int64_t lanes) { return lanes >= 16 ? 13 : 7; }
// A filter extent the lane kernels reuse loads across: odd, from 5 to the widest.
constexpr bool lanes_filter_extent(int64_t k, int64_t lanes) {
  return k >= 5 && k % 2 == 1 && k <= lanes_widest_filter(lanes);
}
template <class T>
bool lanes_wide_filter(const DepthwisePlane<T>& g, int64_t lanes) {
  return g.stride_w == 1 && g.dilation_w == 1 && lanes_filter_extent(g.kernel_w, lanes);
}
// The same down a column for a filter one tap wide (InceptionNeXt's 11x1 bands): unit row
// stride and dilation, an odd height in the same range.
template <class T>
bool lanes_tall_filter(const DepthwisePlane<T>& g, int64_t lanes) {
  return g.kernel_w == 1 && g.stride_h == 1 && g.dilation_h == 1 && lanes_filter_extent(g.kernel_h, lanes);
}

// The stride of the depthwise column walk (generic.h, depthwise_columns) that takes this plane
// (1 or 2), else 0.
template <class T>
int depthwise_column_stride(const DepthwisePlane<T>& p) {
  if (p.dilation_h != 1 || p.dilation_w != 1 || p.col_stride != 1 || p.kernel_h != p.kernel_w) return 0;
  if (p.stride_h == 1 && p.stride_w == 1 && p.kernel_h == 3) return 1;
  if (p.stride_h == 2 && p.stride_w == 2 && (p.kernel_h == 3 || p.kernel_h == 5)) return 2;
  return 0;
}

// Channels per block of store_band_transposed (and rows of its staging).
constexpr int64_t kTransposeBlock = 16;

template <class T>
struct ConvKernelsFor {
  // K rows [k0, k0 + kc) of the runs' pixels into nr-wide panels (row kk of a run at
  // run.dst + kk * nr).
  void (*pack_im2col)(const Im2colView<T>& view, const PixelRun* runs, int64_t run_count, int64_t k0, int64_t kc,
                      int64_t nr, T* dst);
  // Consecutive output rows of conv_transpose2d from its phase tiles: `rows` rows of
  // `channels` planes, each plane's rows contiguous from out + c * plane_stride. With
  // phases = min(sw, out_w), output row i takes column ox from its column phase's tile row,
  // sources[i * phases + ox % sw] + c * ldt[i * phases + ox % sw], at ox / sw, plus
  // bias[c * bias_stride] when bias is non-null. With `stream`, each plane's rows are
  // assembled in `staging` (rows * out_w elements) and leave as whole vectors that bypass the
  // cache (the caller fences before the output is read): for outputs far larger than the
  // cache, which would otherwise be read in before being overwritten.
  void (*store_rows)(const T* const* sources, const int64_t* ldt, int64_t sw, int64_t channels, int64_t rows,
                     int64_t out_w, T* out, int64_t plane_stride, const T* bias, int64_t bias_stride, bool stream,
                     T* staging);
  // The shifted-window path of conv2d. pad_band fills one stride phase of a band for
  // `channels` planes (`plane` apart): band row r holds input row first_row + r * row_step
  // (zeros when outside [0, h)) as `inside` values from columns first_column,
  // first_column + column_step, ..., followed by zeros up to wp. store_band copies the
  // first ow columns of each of `rows` rows (wp apart) of `channels` tile rows (ldt apart) to
  // the output (rows ow apart, planes out_plane apart), adding bias[c * bias_stride] if
  // non-null; `stream` as for store_rows.
  void (*pad_band)(const T* image, int64_t channel_stride, int64_t row_stride, int64_t col_stride, int64_t h,
                   int64_t w, int64_t channels, int64_t first_row, int64_t row_step, int64_t rows,
                   int64_t first_column, int64_t column_step, int64_t inside, int64_t wp, T* band, int64_t plane);
  void (*store_band)(const T* tile, int64_t ldt, int64_t wp, int64_t channels, int64_t rows, int64_t ow, T* out,
                     int64_t out_plane, const T* bias, int64_t bias_stride, bool stream);
  // The same from a pixel-major tile (the shifted-window path with output channels across
  // the vector lanes): output pixel q of channel c, for q < pixels (rows of the band without
  // gaps), at tile[q * ldt + c], transposed kTransposeBlock channels at a time. A streamed
  // store goes through `staging` (kTransposeBlock * pixels elements).
  void (*store_band_transposed)(const T* tile, int64_t ldt, int64_t pixels, int64_t channels, T* out,
                                int64_t out_plane, const T* bias, int64_t bias_stride, bool stream, T* staging);
  // Depthwise output rows [row_begin, row_end) of `count` planes of one geometry (they
  // differ only in input, taps, bias and output). A thread calls depthwise_prepare once with
  // its scratch (depthwise_scratch elements) for the call's geometry, then depthwise for
  // each run of planes with the same scratch.
  void (*depthwise_prepare)(const DepthwisePlane<T>& geometry, T* scratch);
  void (*depthwise)(const DepthwisePlane<T>* planes, int64_t count, int64_t row_begin, int64_t row_end, T* scratch);
  int64_t (*depthwise_scratch)(const DepthwisePlane<T>& geometry);
  // Depthwise with one channel per vector lane (depthwise_lanes channels at a time; 0 and
  // null where the ISA and dtype have no such kernel): output rows [row_begin, row_end) of
  // `channels` planes of the geometry's shape, channel_stride apart in the input (rows
  // contiguous) and out_h * out_w apart in the output; taps: [KH * KW][depthwise_lanes],
  // bias: [depthwise_lanes]. Prepared once per thread and geometry, as depthwise is.
  int64_t depthwise_lanes;
  void (*depthwise_channels_prepare)(const DepthwisePlane<T>& geometry, T* scratch);
  void (*depthwise_channels)(const DepthwisePlane<T>& geometry, const T* input, int64_t channel_stride,
                             int64_t channels, const T* taps, const T* bias, T* out, int64_t row_begin,
                             int64_t row_end, T* scratch);
  int64_t (*depthwise_channels_scratch)(const DepthwisePlane<T>& geometry);
};

struct ConvKernels {
  ConvKernelsFor<float> f32;
  ConvKernelsFor<double> f64;
  template <class T>
  const ConvKernelsFor<T>& get() const;
};

template <>
inline const ConvKernelsFor<float>& ConvKernels::get<float>() const { return f32; }
template <>
inline const ConvKernelsFor<double>& ConvKernels::get<double>() const { return f64; }

}  // namespace tensorops::conv
