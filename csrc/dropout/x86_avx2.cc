#include "dropout/generic.h"
