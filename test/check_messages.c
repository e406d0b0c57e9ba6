/* placeholder */
#include "mg_test.h"
Suite *messages_suite(void);
Suite *
messages_suite(void)
{
    return suite_create("messages");
}
