#include "reduce/generic.h"
