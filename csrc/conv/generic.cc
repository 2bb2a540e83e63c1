#include "conv/generic.h"
