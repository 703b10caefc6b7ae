/* SPDX-License-Identifier: Apache-2.0 */
#include "pairlink/common.h"

/* Compiled into the library, so a program learns which release it runs on,
 * not only which headers it was built against. */
const char *pl_version(void) {
    return PL_VERSION_STRING;
}
