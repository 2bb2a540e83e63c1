#include "shape/generic.h"
