#include "norm/generic.h"
