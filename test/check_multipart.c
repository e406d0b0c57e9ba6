#include <check.h>
#include "mg_multipart.h"
#include "mg_test.h"
Suite *
multipart_suite(void)
{
    Suite *s = suite_create("multipart");
    return s;
}
