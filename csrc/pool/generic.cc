#include "pool/generic.h"
