#include "mg_test.h"
Suite *integration_suite(void) { return suite_create("integration"); }
