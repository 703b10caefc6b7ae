/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the pairing URI parser (pl_uri_parse, pl_uri_inspect)
 * and the format/parse round trip.
 *
 * Input: the URI text as it would arrive from a QR code or a deep link.
 * Checks, besides "no crash, no leak, no UB":
 *  - parse and inspect agree: parse succeeds exactly when inspect succeeds
 *    with no failed semantic check, and an inspect failure is a parse failure
 *    with the same code;
 *  - every error is a named URI error (or TOO_LARGE);
 *  - whatever inspect accepts formats (or is TOO_LARGE: escaping may grow
 *    it past PL_URI_MAX_LEN), and the formatted text parses back to the
 *    same fields, with the same topic check, is accepted by both parsers
 *    (so the formatter never writes what the parser refuses), and formats
 *    again to the very same bytes. */
#include "pairlink/uri.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Before the vector's expiryTimestamp (1700000000), so the seeds pair. */
#define NOW 1650000000

static void check(bool cond) {
    if (!cond) abort();
}

static bool named_uri_error(pl_err e) {
    switch (e) {
    case PL_ERR_TOO_LARGE:
    case PL_ERR_URI_SCHEME:
    case PL_ERR_URI_MALFORMED:
    case PL_ERR_URI_VERSION:
    case PL_ERR_URI_MISSING_FIELD:
    case PL_ERR_URI_BAD_TOPIC:
    case PL_ERR_URI_BAD_KEY:
    case PL_ERR_URI_TOPIC_MISMATCH:
    case PL_ERR_URI_EXPIRED:
        return true;
    default:
        return false;
    }
}

static bool str_eq(const char *a, const char *b) {
    if (!a || !b) return a == b;
    return strcmp(a, b) == 0;
}

static bool same_fields(const pl_uri *a, const pl_uri *b) {
    if (strcmp(a->topic, b->topic) != 0 || a->version != b->version ||
        memcmp(a->sym_key, b->sym_key, sizeof a->sym_key) != 0 ||
        strcmp(a->relay_protocol, b->relay_protocol) != 0 || !str_eq(a->relay_data, b->relay_data) ||
        a->expiry != b->expiry || a->n_methods != b->n_methods)
        return false;
    for (size_t i = 0; i < a->n_methods; i++)
        if (!str_eq(a->methods[i], b->methods[i])) return false;
    return true;
}

/* An all-zero pl_uri, as every failure must leave it. */
static bool cleared(const pl_uri *u) {
    static const pl_uri zero;
    return memcmp(u, &zero, sizeof zero) == 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data;
    pl_uri parsed, seen;
    pl_err soft = PL_OK;

    pl_err ep = pl_uri_parse(&parsed, s, size, NOW);
    pl_err ei = pl_uri_inspect(&seen, s, size, NOW, &soft);
    if (ep == PL_OK) {
        check(ei == PL_OK && soft == PL_OK && same_fields(&parsed, &seen));
        check(parsed.version == 2 && strlen(parsed.topic) == 64);
    } else {
        check(named_uri_error(ep) && cleared(&parsed));
        if (ei == PL_OK) check(soft == ep);
        else check(ei == ep && cleared(&seen));
    }
    pl_uri_clear(&parsed);
    if (ei != PL_OK) return 0;

    /* Without a clock, only the topic check can fail. */
    pl_uri nocheck;
    pl_err soft2 = PL_OK;
    check(pl_uri_inspect(&nocheck, s, size, -1, &soft2) == PL_OK && same_fields(&seen, &nocheck));
    check(soft2 == (soft == PL_ERR_URI_TOPIC_MISMATCH ? soft : PL_OK));
    pl_uri_clear(&nocheck);

    char *text = NULL;
    pl_err ef = pl_uri_format(&text, &seen);
    if (ef == PL_ERR_TOO_LARGE) {
        check(text == NULL);
        pl_uri_clear(&seen);
        return 0;
    }
    check(ef == PL_OK && text != NULL);
    size_t tl = strlen(text);

    pl_uri again;
    pl_err soft3 = PL_OK;
    check(pl_uri_inspect(&again, text, tl, -1, &soft3) == PL_OK);
    check(same_fields(&seen, &again) && soft3 == soft2);
    /* The topic check does not depend on formatting; the expiry check may:
     * "expiryTimestamp=0" is present (so expired) on input but formats as
     * absent (expiry 0 is "none" in pl_uri, as in JS). */
    pl_uri strict;
    pl_err ep2 = pl_uri_parse(&strict, text, tl, NOW);
    if (soft == PL_OK) check(ep2 == PL_OK);
    else if (soft == PL_ERR_URI_TOPIC_MISMATCH) check(ep2 == soft);
    else check(ep2 == PL_ERR_URI_EXPIRED ? seen.expiry != 0 : seen.expiry == 0);
    pl_uri_clear(&strict);

    char *text2 = NULL;
    check(pl_uri_format(&text2, &again) == PL_OK && strcmp(text, text2) == 0);
    pl_free_secret(text2, strlen(text2));
    pl_free_secret(text, tl);
    pl_uri_clear(&again);
    pl_uri_clear(&seen);
    return 0;
}
