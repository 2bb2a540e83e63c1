// Errors raised from C++.
//
// Python validates every argument first and words the errors as PyTorch does; C++ re-checks
// the invariants a kernel relies on and refuses with one of these rather than crash.
// module.cc translates ShapeError to tensorops.ShapeError (a ValueError and a
// RuntimeError), TypeError to TypeError and IndexError to IndexError.
#pragma once

#include <stdexcept>
#include <string>

namespace tensorops {

struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct IndexError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define TENSOROPS_CHECK(cond, ...)                       \
  do {                                                   \
    if (!(cond)) throw ::tensorops::ShapeError(__VA_ARGS__); \
  } while (0)

}  // namespace tensorops
