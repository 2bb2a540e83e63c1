#include "gemm/generic.h"
