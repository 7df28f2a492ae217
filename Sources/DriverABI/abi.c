/* The ABI target is the header alone; this unit makes SwiftPM build it as a C target and
 * checks that nova_driver.h compiles on its own. */
#include "nova_driver.h"
