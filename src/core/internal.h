/* Private helpers shared by every layer. Not installed. */
#ifndef PAIRLINK_INTERNAL_H
#define PAIRLINK_INTERNAL_H

#include "pairlink/common.h"
#include "pairlink/hash.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Report a programming error and abort. Never returns. */
_Noreturn void pl__misuse(const char *what, const char *file, int line);

/* Check an API precondition; on failure it is a bug in the caller. */
#define PL_REQUIRE(cond)                                                   \
    do {                                                                   \
        if (!(cond)) pl__misuse("precondition failed: " #cond, __FILE__, __LINE__); \
    } while (0)

/* Record the underlying library/system code behind a wrapped error. */
void pl__set_detail(long detail);

/* Return `err` after recording `detail`; keeps call sites one line. */
static inline pl_err pl__fail(pl_err err, long detail) {
    pl__set_detail(detail);
    return err;
}

/* Strict UTF-8 (RFC 3629): no overlongs, no surrogates, nothing above
 * U+10FFFF, the rule of jansson and of JS strings. */
bool pl__utf8_valid(const unsigned char *s, size_t n);

#define PL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Random bytes for a core: from its injected source, or pl_random when it
 * has none (hash.h: pl_rng_fn). */
void pl__rng(pl_rng_fn rng, void *ctx, uint8_t *buf, size_t len);

/* Propagate a non-OK pl_err from an expression. */
#define PL_TRY(expr)                     \
    do {                                 \
        pl_err pl__e = (expr);           \
        if (pl__e != PL_OK) return pl__e; \
    } while (0)

#endif
