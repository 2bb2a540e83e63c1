// Google Benchmark over every row of the reduce kernel table, for every ISA this CPU runs,
// in float32 and float64. Row kernels reduce one span (kRowSpan elements, L1/L2 resident);
// column kernels one tile of kColRows rows; softmax rows are 128 long (attention scores) and
// softmax columns a tile of 128 rows. Throughput is reported in elements per second.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/cpu.h"
#include "reduce/reduce.h"

namespace {

using namespace tensorops;
using namespace tensorops::reduce;

template <class T>
std::vector<T> random_data(int64_t n) {
  std::mt19937 gen(42);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& x : v) x = static_cast<T>(dist(gen));
  return v;
}

template <class Body>
void add(const std::string& name, int64_t elements, Body body) {
  benchmark::RegisterBenchmark(name.c_str(), [elements, body](benchmark::State& state) {
    for (auto _ : state) body();
    state.SetItemsProcessed(state.iterations() * elements);
  });
}

template <class T>
void register_table(const std::string& prefix, const TypedKernels<T>& k) {
  constexpr int64_t tile = kColTileBytes / static_cast<int64_t>(sizeof(T));
  const int64_t row_n = kRowSpan;
  const int64_t col_rows = kColRows, col_n = tile;
  const int64_t soft_n = 128, soft_rows = 128;
  // Shared inputs live as long as the program; benchmarks only read them.
  static std::vector<T> row = random_data<T>(row_n);
  static std::vector<T> cols = random_data<T>(col_rows * col_n);
  static std::vector<T> out(static_cast<size_t>(col_rows * col_n));
  static std::vector<T> scratch(static_cast<size_t>(3 * col_n));
  static std::vector<Moments> moments(static_cast<size_t>(col_n));
  const T* r = row.data();
  const T* c = cols.data();
  T* o = out.data();
  T* s = scratch.data();
  const std::string span = "/" + std::to_string(row_n);
  const std::string block = "/" + std::to_string(col_rows) + "x" + std::to_string(col_n);

  add(prefix + "sum_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.sum_row(r, row_n)); });
  add(prefix + "prod_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.prod_row(r, row_n)); });
  add(prefix + "max_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.max_row(r, row_n)); });
  add(prefix + "min_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.min_row(r, row_n)); });
  add(prefix + "moments_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.moments_row(r, row_n)); });
  add(prefix + "logsumexp_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.logsumexp_row(r, row_n)); });
  add(prefix + "argmax_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.argmax_row(r, row_n)); });
  add(prefix + "argmin_row" + span, row_n, [=] { benchmark::DoNotOptimize(k.argmin_row(r, row_n)); });

  const int64_t cn = col_rows * col_n;
  const auto fold = [&](const char* name, void (*f)(const T*, int64_t, int64_t, int64_t, T*)) {
    add(prefix + name + block, cn, [=] {
      f(c, col_rows, col_n, col_n, o);
      benchmark::ClobberMemory();
    });
  };
  fold("sum_cols", k.sum_cols);
  fold("prod_cols", k.prod_cols);
  fold("max_cols", k.max_cols);
  fold("min_cols", k.min_cols);
  Moments* m = moments.data();
  add(prefix + "moments_cols" + block, cn, [=] {
    k.moments_cols(c, col_rows, col_n, col_n, s, m);
    benchmark::ClobberMemory();
  });
  const auto pair = [&](const char* name, void (*f)(const T*, int64_t, int64_t, int64_t, T*, T*)) {
    add(prefix + name + block, cn, [=] {
      f(c, col_rows, col_n, col_n, o, o + col_n);
      benchmark::ClobberMemory();
    });
  };
  pair("logsumexp_cols", k.logsumexp_cols);
  pair("argmax_cols", k.argmax_cols);
  pair("argmin_cols", k.argmin_cols);

  const int64_t sn = soft_rows * soft_n;
  const std::string rows128 = "/" + std::to_string(soft_rows) + "x" + std::to_string(soft_n);
  std::vector<int64_t> row_offsets(static_cast<size_t>(soft_rows));
  for (int64_t i = 0; i < soft_rows; ++i) row_offsets[static_cast<size_t>(i)] = i * soft_n;
  add(prefix + "softmax_rows" + rows128, sn, [=] {
    k.softmax_rows(c, o, row_offsets.data(), soft_rows, soft_n);
    benchmark::ClobberMemory();
  });
  add(prefix + "log_softmax_rows" + rows128, sn, [=] {
    k.log_softmax_rows(c, o, row_offsets.data(), soft_rows, soft_n);
    benchmark::ClobberMemory();
  });
  add(prefix + "softmax_cols" + rows128, sn, [=] {
    k.softmax_cols(c, o, soft_rows, soft_n, soft_n, s);
    benchmark::ClobberMemory();
  });
  add(prefix + "log_softmax_cols" + rows128, sn, [=] {
    k.log_softmax_cols(c, o, soft_rows, soft_n, soft_n, s);
    benchmark::ClobberMemory();
  });
}

const bool registered = [] {
  const auto& tables = kernel_tables();
  for (int isa = 0; isa <= static_cast<int>(detected_isa()); ++isa) {
    if (!tables[isa]) continue;
    const std::string token = isa_token(static_cast<Isa>(isa));
    register_table(token + "/f32/", tables[isa]->f32);
    register_table(token + "/f64/", tables[isa]->f64);
  }
  return true;
}();

}  // namespace
