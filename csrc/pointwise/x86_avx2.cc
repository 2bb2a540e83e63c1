#include "pointwise/generic.h"
