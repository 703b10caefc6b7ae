/* SPDX-License-Identifier: Apache-2.0 */
/* The platform layer: secret key files (keyfile.h) and the wall clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/driver.h"
#include "pairlink/keyfile.h"
#include "support/support.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void test_keyfile(void **state) {
    (void)state;
    char dir[] = "/tmp/pl-keyfile-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/client.key", dir);

    uint8_t k1[32], k2[32];
    assert_int_equal(pl_keyfile_load(path, k1), PL_ERR_NOT_FOUND);
    bool created = false;
    assert_int_equal(pl_keyfile_load_or_create(path, k1, &created), PL_OK);
    assert_true(created);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(pl_keyfile_load_or_create(path, k2, &created), PL_OK);
    assert_false(created);
    assert_memory_equal(k1, k2, 32);

    /* Looser permissions are refused, not repaired. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(pl_keyfile_load(path, k2), PL_ERR_KEY_FILE);
    assert_int_equal(pl_keyfile_load_or_create(path, k2, NULL), PL_ERR_KEY_FILE);
    assert_int_equal(chmod(path, 0600), 0);

    /* Wrong size. */
    char bad[256];
    snprintf(bad, sizeof bad, "%s/short.key", dir);
    int fd = open(bad, O_CREAT | O_WRONLY | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, k1, 31), 31);
    close(fd);
    assert_int_equal(pl_keyfile_load_or_create(bad, k2, NULL), PL_ERR_KEY_FILE);
    uint8_t zero[32] = {0};
    assert_memory_equal(k2, zero, 32); /* wiped on failure */

    /* A symlink at the key path is refused. */
    char link_path[256];
    snprintf(link_path, sizeof link_path, "%s/link.key", dir);
    assert_int_equal(symlink(path, link_path), 0);
    assert_int_equal(pl_keyfile_load(link_path, k2), PL_ERR_KEY_FILE);

    /* No directory: an I/O error, nothing created. */
    char nodir[256];
    snprintf(nodir, sizeof nodir, "%s/missing/x.key", dir);
    assert_int_equal(pl_keyfile_load_or_create(nodir, k2, NULL), PL_ERR_IO);

    unlink(link_path);
    unlink(bad);
    unlink(path);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
}

static void test_wall_clock(void **state) {
    (void)state;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t now = pl_wall_clock_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    assert_true(now >= before && now <= after);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyfile),
        cmocka_unit_test(test_wall_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
