/* SPDX-License-Identifier: Apache-2.0 */
/* The wall clock: the one place that reads it (driver.h). */
#include "pairlink/driver.h"

#include <time.h>

int64_t pl_wall_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
