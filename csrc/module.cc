// The compiled module tensorops._core: one m.def per op, grouped by family. Each family's
// bindings live in csrc/<family>/bindings.inc and are included here, so this stays the only
// translation unit that includes pybind11 (see core/bindings.h).
#include <Python.h>

#include "core/bindings.h"
#include "core/cpu.h"
#include "core/parallel.h"
#include "pointwise/pointwise.h"
#include "reduce/reduce.h"
#include "shape/shape.h"
#include "gemm/gemm.h"
#include "conv/conv.h"
#include "core/workspace.h"
#include "norm/norm.h"
#include "pool/pool.h"
#include "embedding/embedding.h"
#include "dropout/dropout.h"

namespace py = pybind11;
using namespace tensorops;

namespace {

// tensorops.ShapeError derives from both ValueError and RuntimeError, which pybind11's
// register_exception cannot express, so the class is made with the C API.
PyObject* g_shape_error = nullptr;

void register_errors(py::module_& m) {
  py::object bases = py::make_tuple(py::handle(PyExc_ValueError), py::handle(PyExc_RuntimeError));
  g_shape_error = PyErr_NewExceptionWithDoc(
      "tensorops.ShapeError",
      "Wrong shape, rank, size or parameter value. A ValueError and a RuntimeError, so code "
      "written for NumPy and code written for PyTorch both catch it.",
      bases.ptr(), nullptr);
  if (!g_shape_error) throw py::error_already_set();
  m.add_object("ShapeError", py::handle(g_shape_error));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ShapeError& e) {
      PyErr_SetString(g_shape_error, e.what());
    } catch (const TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    }
  });
}

Isa parse_isa_or_throw(const std::string& text) {
  Isa isa;
  if (!parse_isa(text, &isa))
    throw py::value_error("TENSOROPS_ISA: unknown ISA '" + text +
                          "' (expected one of scalar, avx2, avx512, generic, x86_avx2, x86_avx512)");
  return isa;
}

}  // namespace

// Exported under a name no other library uses, so threadpoolctl's controller
// (python/tensorops/_threadpool.py) can recognise this module among the loaded libraries.
extern "C" __attribute__((visibility("default"))) int tensorops_get_num_threads() { return get_num_threads(); }

PYBIND11_MODULE(_core, m) {
  m.doc() = "tensorops compiled kernels";
  register_errors(m);

  // ---- cpu and threads -----------------------------------------------------------------
  m.def("detected_isa", [] { return isa_token(detected_isa()); },
        "The best kernel set this CPU supports (generic, x86_avx2 or x86_avx512).");
  m.def("active_isa", [] { return isa_token(active_isa()); }, "The kernel set in use.");
  m.def("set_isa_cap", [](const std::string& isa) { set_isa_cap(parse_isa_or_throw(isa)); }, py::arg("isa"),
        "Caps the kernel set (never above what the CPU supports).");
  m.def("isa_cap", [] { return isa_token(isa_cap()); }, "The current cap on the kernel set.");
  m.def("cpu_features", [] { return cpu_features().names(); }, "The CPU features detected.");
  m.def("cpu_vendor", [] { return cpu_features().vendor; });
  m.def("l2_cache_bytes", [] { return l2_cache_bytes(); },
        "One core's L2 cache in bytes as the paths assume it, 0 if unknown.");
  m.def("detected_l2_cache_bytes", [] { return detected_l2_cache_bytes(); },
        "One core's L2 cache in bytes as the C library reports it, 0 if unknown.");
  m.def("set_l2_cache_bytes",
        [](int64_t bytes) {
          if (bytes < 0)
            throw py::value_error("TENSOROPS_L2_CACHE_BYTES: expected a number of bytes >= 0, got " +
                                  std::to_string(bytes));
          set_l2_cache_bytes(bytes);
        },
        py::arg("bytes"),
        "Assumes this L2 size when choosing paths; 0 restores the detected size.");
  m.def("get_num_threads", &get_num_threads, "Threads a kernel may use.");
  m.def("set_num_threads", &set_num_threads, py::arg("n"), "Sets the threads a kernel may use.");
  m.def("openmp_version", [] { return static_cast<int>(_OPENMP); });

  // ---- output buffers --------------------------------------------------------------------
  m.def("empty", &new_output, py::arg("shape"), py::arg("dtype"),
        "A new C-contiguous array; large ones come from the buffer pool.");
  m.attr("POOLED_BYTES") = kPooledBytes;
  m.def("empty_cache", &pool_empty, "Frees the idle blocks of the buffer pool.");
  m.def("cache_idle_bytes", &pool_idle_bytes, "Bytes held by idle blocks of the buffer pool.");
  m.def("cache_limit", &pool_limit, "The most bytes of idle blocks the pool keeps.");
  m.def("set_cache_limit", &set_pool_limit, py::arg("bytes"), "Sets the most bytes of idle blocks the pool keeps.");
  m.def("workspace_bytes", &workspace_bytes,
        "Bytes held by the kernels' per-thread workspaces (GEMM packing buffers, convolution tiles).");
  m.def("mark_workspace_requests", &mark_workspace_requests,
        "Starts a new count for workspace_requested_bytes(); call it while no kernel runs.");
  m.def("workspace_requested_bytes", &workspace_requested_bytes,
        "Sum over the per-thread workspaces of the largest request each has had since "
        "mark_workspace_requests(): the workspace the calls since then needed.");

  // ---- families --------------------------------------------------------------------------
#include "pointwise/bindings.inc"
#include "reduce/bindings.inc"
#include "shape/bindings.inc"
#include "gemm/bindings.inc"
#include "conv/bindings.inc"
#include "norm/bindings.inc"
#include "pool/bindings.inc"
#include "embedding/bindings.inc"
#include "dropout/bindings.inc"
}
