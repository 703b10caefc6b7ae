/* Error model and hash/HKDF primitives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "pairlink/common.h"
#include "pairlink/hash.h"
#include "support/support.h"

static void test_strerror_names_every_code(void **state) {
    (void)state;
    assert_string_equal(pl_strerror(PL_OK), "success");
    assert_string_equal(pl_errname(PL_ERR_URI_EXPIRED), "PL_ERR_URI_EXPIRED");
    assert_string_equal(pl_strerror((pl_err)99999), "unknown error");
    assert_string_equal(pl_errname((pl_err)99999), "PL_ERR_UNKNOWN");
#define CHECK(name, value, msg)                                   \
    assert_int_equal((int)name, value);                           \
    assert_true(strlen(pl_strerror(name)) > 0);                   \
    assert_string_equal(pl_errname(name), #name);
    PL_ERRORS(CHECK)
#undef CHECK
}

static void check_hkdf(const char *ikm_hex, const char *salt_hex, const char *info_hex,
                       const char *okm_hex) {
    size_t ikm_n, salt_n, info_n, okm_n;
    uint8_t *ikm = pl_test_unhex(ikm_hex, &ikm_n);
    uint8_t *salt = pl_test_unhex(salt_hex, &salt_n);
    uint8_t *info = pl_test_unhex(info_hex, &info_n);
    uint8_t *okm = pl_test_unhex(okm_hex, &okm_n);
    uint8_t out[128];
    assert_int_equal(pl_hkdf_sha256(out, okm_n, salt_n ? salt : NULL, salt_n, ikm, ikm_n,
                                    info_n ? info : NULL, info_n),
                     PL_OK);
    assert_memory_equal(out, okm, okm_n);
    free(ikm), free(salt), free(info), free(okm);
}

/* RFC 5869 appendix A, test cases 1-3 (SHA-256). */
static void test_hkdf_rfc5869(void **state) {
    (void)state;
    check_hkdf("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "000102030405060708090a0b0c",
               "f0f1f2f3f4f5f6f7f8f9",
               "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
    check_hkdf(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f",
        "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff",
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
    check_hkdf("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "", "",
               "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

static void test_hkdf_length_bounds(void **state) {
    (void)state;
    uint8_t out[1];
    assert_int_equal(pl_hkdf_sha256(out, 0, NULL, 0, NULL, 0, NULL, 0), PL_ERR_BAD_LENGTH);
    assert_int_equal(pl_hkdf_sha256(out, PL_HKDF_SHA256_MAX_OUT + 1, NULL, 0, NULL, 0, NULL, 0),
                     PL_ERR_BAD_LENGTH);
}

static void test_ct_equal(void **state) {
    (void)state;
    uint8_t a[32] = {1}, b[32] = {1};
    assert_true(pl_ct_equal(a, b, 32));
    b[31] ^= 1;
    assert_false(pl_ct_equal(a, b, 32));
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror_names_every_code),
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_hkdf_length_bounds),
        cmocka_unit_test(test_ct_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
