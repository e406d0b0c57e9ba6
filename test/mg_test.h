#include "mg_util.h"
