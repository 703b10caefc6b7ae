/* SPDX-License-Identifier: Apache-2.0 */
/* pl_version(): the library reports the release it was built as. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first */
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pairlink/common.h"
#include "support/support.h"

static void test_version_matches_headers(void **state) {
    (void)state;
    const char *v = pl_version();
    assert_non_null(v);
    assert_string_equal(v, PL_VERSION_STRING);
    char parts[32];
    snprintf(parts, sizeof parts, "%d.%d.%d", PL_VERSION_MAJOR, PL_VERSION_MINOR, PL_VERSION_PATCH);
    assert_string_equal(v, parts);
}

/* The version CMake gives the package (pairlink.pc, pairlinkConfigVersion,
 * the .deb) is the one the library reports. */
static void test_version_matches_package(void **state) {
    (void)state;
    assert_string_equal(pl_version(), PL_PROJECT_VERSION);
}

/* A static string: the same pointer every time, usable before pl_init(). */
static void test_version_is_static(void **state) {
    (void)state;
    assert_ptr_equal(pl_version(), pl_version());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_is_static),
        cmocka_unit_test(test_version_matches_headers),
        cmocka_unit_test(test_version_matches_package),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
