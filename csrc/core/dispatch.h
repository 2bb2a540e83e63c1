// Hoisted kernel dispatch.
//
// A family gathers its microkernels in a table struct (function pointers, one per op and
// dtype). Each ISA's translation unit (csrc/<family>/<isa>.cc, compiled with that ISA's
// flags and -DTENSOROPS_ISA_NS=<isa>) defines `const Table* <family>::<isa>::kernel_table()`.
// The driver declares them with TENSOROPS_KERNEL_TABLES(Table), which builds the array of
// tables once (indexed by Isa, so the order is the enum's: generic, x86_avx2, x86_avx512);
// each call then picks the best table at or below the active ISA with one array walk:
// no CPUID, no string compare on the hot path.
//
// Only the tables of ISAs the CPU runs are built. Building one runs code of its ISA's
// translation unit, which the compiler is free to write with that ISA's instructions: the
// AVX-512 GEMM table's arrays of function pointers were copied with zmm moves, an illegal
// instruction on a CPU with AVX2 only.
//
//   namespace tensorops::pointwise {
//   TENSOROPS_KERNEL_TABLES(PointwiseKernels)
//   const PointwiseKernels& kernels() { return select_kernels(kernel_tables()); }
//   }
#pragma once

#include <array>

#include "core/cpu.h"

namespace tensorops {

template <class Table>
using KernelTables = std::array<const Table*, kIsaCount>;  // indexed by Isa; null = not built

template <class Table>
using KernelTableMaker = const Table* (*)();

// Builds the table of every ISA up to the detected one (not the cap's: a cap may be lifted
// later, the CPU stays what it is). makers is indexed by Isa; null where not compiled.
template <class Table>
KernelTables<Table> build_kernel_tables(const std::array<KernelTableMaker<Table>, kIsaCount>& makers) {
  KernelTables<Table> tables{};
  for (int isa = 0; isa <= static_cast<int>(detected_isa()); ++isa)
    if (makers[isa]) tables[isa] = makers[isa]();
  return tables;
}

// The best table at or below the active ISA. generic is always built.
template <class Table>
const Table& select_kernels(const KernelTables<Table>& tables) {
  for (int isa = static_cast<int>(active_isa()); isa > 0; --isa)
    if (tables[isa]) return *tables[isa];
  return *tables[0];
}

}  // namespace tensorops

#if TENSOROPS_X86
#define TENSOROPS_X86_ONLY(...) __VA_ARGS__
#else
#define TENSOROPS_X86_ONLY(...)
#endif

#define TENSOROPS_KERNEL_TABLES(Table)                                                                        \
  namespace generic {                                                                                         \
  const Table* kernel_table();                                                                                \
  }                                                                                                           \
  TENSOROPS_X86_ONLY(namespace x86_avx2 { const Table* kernel_table(); }                                      \
                     namespace x86_avx512 { const Table* kernel_table(); })                                   \
  inline const ::tensorops::KernelTables<Table>& kernel_tables() {                                            \
    static const ::tensorops::KernelTables<Table> all = ::tensorops::build_kernel_tables<Table>(              \
        {{&generic::kernel_table TENSOROPS_X86_ONLY(, &x86_avx2::kernel_table, &x86_avx512::kernel_table)}}); \
    return all;                                                                                               \
  }
