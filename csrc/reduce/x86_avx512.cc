// GCC 12's _mm512_reduce_* helpers read a deliberately undefined register (as noted in
// CMakeLists.txt for -Wmaybe-uninitialized); here it reports it as certainly uninitialised.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "reduce/generic.h"
