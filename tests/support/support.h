/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers shared by the cmocka test programs. Include after cmocka.h's
 * prerequisites (stdarg.h, stddef.h, setjmp.h, stdint.h). */
#ifndef PL_TEST_SUPPORT_H
#define PL_TEST_SUPPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Load ../shared/vectors/<name> (PL_SHARED_DIR/vectors, overridable with the
 * environment variable PL_SHARED_DIR). Aborts the test program on failure:
 * a missing vector file must fail the suite, never skip it. Caller owns the
 * returned reference (json_decref). */
json_t *pl_test_vectors(const char *name);

/* String member by dotted path ("envelopes.iv"); aborts if missing. */
const char *pl_test_str(json_t *root, const char *path);

/* Decode hex at a dotted path into out (exactly `len` bytes); aborts on a
 * size mismatch. Returns out for convenience. */
uint8_t *pl_test_hex(json_t *root, const char *path, uint8_t *out, size_t len);

/* Decode an arbitrary hex string to a malloc'd buffer; *len set. */
uint8_t *pl_test_unhex(const char *hex, size_t *len);

/* Seed for randomized tests: PL_TEST_SEED from the environment, else time;
 * printed so that a failing run can be repeated. */
uint64_t pl_test_seed(void);

/* xorshift64* for reproducible randomized tests (not for keys). */
uint64_t pl_test_rand(uint64_t *state);
void pl_test_rand_bytes(uint64_t *state, uint8_t *out, size_t len);

#endif
