/* The ABI target is the header alone; this unit makes SwiftPM build it as a C target, checks
 * that nova_driver.h compiles on its own, and that each size macro marks the end of its
 * struct's 1.0 fields (true while 1.0 is the only minor; a later minor appends fields, and
 * these become `<` with a new macro for that minor). */
#include "nova_driver.h"

_Static_assert(NOVA_DRIVER_SIZE_1_0 == sizeof(nova_driver), "nova_driver 1.0 size");
_Static_assert(NOVA_HOST_API_SIZE_1_0 == sizeof(nova_host_api), "nova_host_api 1.0 size");
_Static_assert(NOVA_CALL_SIZE_1_0 == sizeof(nova_call), "nova_call 1.0 size");
_Static_assert(NOVA_USAGE_SIZE_1_0 == sizeof(nova_usage), "nova_usage 1.0 size");
