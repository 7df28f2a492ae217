/* The ABI target is the header alone; this unit makes SwiftPM build it as a C target, checks
 * that nova_driver.h compiles on its own, and that each size macro marks the end of its
 * struct's fields for that minor: the newest minor's macro is the whole struct, older ones lie
 * strictly inside it (fields are only ever appended). */
#include "nova_driver.h"

_Static_assert(NOVA_DRIVER_SIZE_1_0 < NOVA_DRIVER_SIZE_1_1, "nova_driver 1.1 appends to 1.0");
_Static_assert(NOVA_DRIVER_SIZE_1_1 == sizeof(nova_driver), "nova_driver 1.1 size");
_Static_assert(NOVA_HOST_API_SIZE_1_0 < NOVA_HOST_API_SIZE_1_1, "nova_host_api 1.1 appends to 1.0");
_Static_assert(NOVA_HOST_API_SIZE_1_1 == sizeof(nova_host_api), "nova_host_api 1.1 size");
_Static_assert(NOVA_CALL_SIZE_1_0 == sizeof(nova_call), "nova_call 1.0 size");
_Static_assert(NOVA_USAGE_SIZE_1_0 == sizeof(nova_usage), "nova_usage 1.0 size");
