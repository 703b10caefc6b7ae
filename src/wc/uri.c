/* SPDX-License-Identifier: Apache-2.0 */
/* WalletConnect v2 pairing URI: parse, format, create.
 *
 * Encoding mirrors @walletconnect/utils formatUri, which serialises through
 * WHATWG URLSearchParams (application/x-www-form-urlencoded): bytes of the
 * UTF-8 value stay as they are when in [A-Za-z0-9*-._], a space becomes '+',
 * everything else becomes %XX with uppercase hex. Keys are sorted (JS uses
 * localeCompare; for our fixed key set that is the order written below).
 *
 * The parser is deliberately stricter than JS parseUri (which never fails):
 * a malformed %-escape, a decoded NUL, invalid UTF-8, raw control bytes or
 * spaces, or a repeated known key are PL_ERR_URI_MALFORMED. Repeated keys are
 * refused because JS keeps the last one while other parsers keep the first:
 * two readers of one URI must never disagree on its symKey or relay. */
#include "pairlink/uri.h"

#include "core/internal.h"
#include "wc/wc_internal.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TTL 300 /* seconds; what JS uses for a fresh pairing */

/* ---- small helpers ---- */

static int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool all_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (hex_digit((unsigned char)s[i]) < 0) return false;
    return true;
}


/* Form-decode s[0..n) into out (capacity >= n + 1), NUL-terminated. */
static pl_err form_decode(char *out, size_t *out_len, const char *s, size_t n) {
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            out[o++] = ' ';
        } else if (c == '%') {
            int h, l;
            if (n - i < 3 || (h = hex_digit((unsigned char)s[i + 1])) < 0 ||
                (l = hex_digit((unsigned char)s[i + 2])) < 0)
                return PL_ERR_URI_MALFORMED;
            out[o++] = (char)(h << 4 | l);
            i += 2;
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    /* A NUL would silently truncate the C string. */
    if (memchr(out, '\0', o)) return PL_ERR_URI_MALFORMED;
    if (!pl__utf8_valid((const unsigned char *)out, o)) return PL_ERR_URI_MALFORMED;
    *out_len = o;
    return PL_OK;
}

/* Decimal digits only, no sign, no overflow. */
static bool parse_i64(const char *s, size_t n, int64_t *v) {
    if (n == 0) return false;
    int64_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        int d = s[i] - '0';
        if (acc > (INT64_MAX - d) / 10) return false;
        acc = acc * 10 + d;
    }
    *v = acc;
    return true;
}

static bool method_name_ok(const char *m, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (m[i] == ',' || m[i] == '[' || m[i] == ']') return false;
    return true;
}

static pl_err add_method(pl_uri *u, const char *m, size_t n) {
    if (!method_name_ok(m, n)) return PL_ERR_URI_MALFORMED;
    if (u->n_methods >= PL_URI_MAX_METHODS) return PL_ERR_TOO_LARGE;
    char *c = strndup(m, n);
    if (!c) return PL_ERR_NOMEM;
    u->methods[u->n_methods++] = c;
    return PL_OK;
}

/* Comma-separated names inside s[0..n); every name non-empty. */
static pl_err add_method_list(pl_uri *u, const char *s, size_t n) {
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == ',') {
            PL_TRY(add_method(u, s + start, i - start));
            start = i + 1;
        }
    }
    return PL_OK;
}

/* `methods` is either "a,b,c" (what JS writes) or the grouped form of the
 * spec, "[a],[b,c]"; both flatten to one list. Empty value: no methods (JS
 * would yield [""], which no peer can use). */
static pl_err parse_methods(pl_uri *u, const char *v, size_t n) {
    if (n == 0) return PL_OK;
    if (v[0] != '[') return add_method_list(u, v, n);
    size_t i = 0;
    for (;;) {
        if (i >= n || v[i] != '[') return PL_ERR_URI_MALFORMED;
        const char *close = memchr(v + i + 1, ']', n - i - 1);
        if (!close) return PL_ERR_URI_MALFORMED;
        size_t glen = (size_t)(close - (v + i + 1));
        PL_TRY(add_method_list(u, v + i + 1, glen));
        i += glen + 2;
        if (i == n) return PL_OK;
        if (v[i] != ',') return PL_ERR_URI_MALFORMED;
        i++;
    }
}

enum { K_SYMKEY, K_RELAY_PROTOCOL, K_RELAY_DATA, K_EXPIRY, K_METHODS, K_COUNT };
static const char *const known_keys[K_COUNT] = {"symKey", "relay-protocol", "relay-data",
                                                "expiryTimestamp", "methods"};

/* Everything but clearing on failure; `scratch` (>= len + 1 bytes) may end up
 * holding the decoded symKey and is wiped by the caller. */
static pl_err parse(pl_uri *out, const char *s, size_t len, int64_t now, char *scratch,
                    pl_err *soft) {
    size_t p;
    if (len >= 5 && memcmp(s, "wc://", 5) == 0)
        p = 5;
    else if (len >= 3 && memcmp(s, "wc:", 3) == 0)
        p = 3;
    else
        return PL_ERR_URI_SCHEME;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7F) return PL_ERR_URI_MALFORMED;
    }

    const char *q = memchr(s + p, '?', len - p);
    size_t path_end = q ? (size_t)(q - s) : len;
    const char *at = memchr(s + p, '@', path_end - p);
    if (!at) return PL_ERR_URI_MALFORMED;
    const char *topic = s + p;
    size_t topic_len = (size_t)(at - topic);
    const char *ver = at + 1;
    size_t ver_len = (size_t)(s + path_end - ver);
    int64_t version;
    if (ver_len > 9 || !parse_i64(ver, ver_len, &version)) return PL_ERR_URI_MALFORMED;

    bool seen[K_COUNT] = {false};
    bool key_ok = false, has_expiry = false;
    size_t i = q ? path_end + 1 : len;
    while (i < len) {
        const char *amp = memchr(s + i, '&', len - i);
        size_t seg_end = amp ? (size_t)(amp - s) : len;
        size_t seg_len = seg_end - i;
        if (seg_len > 0) {
            const char *seg = s + i;
            const char *eq = memchr(seg, '=', seg_len);
            size_t name_len = eq ? (size_t)(eq - seg) : seg_len;
            const char *val = eq ? eq + 1 : seg + seg_len;
            size_t val_len = (size_t)(seg + seg_len - val);

            size_t dn;
            PL_TRY(form_decode(scratch, &dn, seg, name_len));
            int k = -1;
            for (int j = 0; j < K_COUNT; j++)
                if (strcmp(scratch, known_keys[j]) == 0) k = j;

            size_t vn;
            PL_TRY(form_decode(scratch, &vn, val, val_len));
            if (k >= 0) {
                if (seen[k]) return PL_ERR_URI_MALFORMED;
                seen[k] = true;
            }
            switch (k) {
            case K_SYMKEY:
                /* Length is public; the hex digits are decoded in constant time. */
                key_ok = vn == 2 * PL_SYMKEY_BYTES &&
                         pl_hex_decode_exact(out->sym_key, PL_SYMKEY_BYTES, scratch, vn) == PL_OK;
                break;
            case K_RELAY_PROTOCOL:
                if (vn >= sizeof out->relay_protocol) return PL_ERR_URI_MALFORMED;
                memcpy(out->relay_protocol, scratch, vn + 1);
                break;
            case K_RELAY_DATA:
                /* JS drops an empty relay-data when formatting; so do we. */
                if (vn > 0 && !(out->relay_data = strdup(scratch))) return PL_ERR_NOMEM;
                break;
            case K_EXPIRY:
                /* JS treats an empty value as absent. */
                if (vn > 0 && !parse_i64(scratch, vn, &out->expiry)) return PL_ERR_URI_MALFORMED;
                has_expiry = vn > 0;
                break;
            case K_METHODS:
                PL_TRY(parse_methods(out, scratch, vn));
                break;
            default:
                break; /* unknown keys (other relay-* too) are ignored, as in JS */
            }
        }
        i = seg_end + 1;
    }

    if (version != 2) return PL_ERR_URI_VERSION;
    uint8_t topic_bin[32];
    if (topic_len != 64 || !all_hex(topic, topic_len) ||
        pl_hex_decode_exact(topic_bin, sizeof topic_bin, topic, topic_len) != PL_OK)
        return PL_ERR_URI_BAD_TOPIC;
    if (!seen[K_SYMKEY] || !seen[K_RELAY_PROTOCOL] || out->relay_protocol[0] == '\0')
        return PL_ERR_URI_MISSING_FIELD;
    if (!key_ok) return PL_ERR_URI_BAD_KEY;

    uint8_t digest[PL_SHA256_BYTES];
    pl_sha256(digest, out->sym_key, PL_SYMKEY_BYTES);
    int match = pl_ct_equal(digest, topic_bin, sizeof digest);
    pl_wipe(digest, sizeof digest);
    PL_TRY(pl_hex_encode(out->topic, sizeof out->topic, topic_bin, sizeof topic_bin));
    out->version = 2;
    /* Semantic checks: fatal for pl_uri_parse, reported for pl_uri_inspect. */
    pl_err check = PL_OK;
    if (!match) check = PL_ERR_URI_TOPIC_MISMATCH;
    else if (now >= 0 && has_expiry && out->expiry <= now) check = PL_ERR_URI_EXPIRED;
    if (soft) {
        *soft = check;
        return PL_OK;
    }
    return check;
}

static pl_err parse_entry(pl_uri *out, const char *s, size_t len, int64_t now, pl_err *soft) {
    PL_REQUIRE(out && (s || len == 0));
    memset(out, 0, sizeof *out);
    if (soft) *soft = PL_OK;
    if (len > PL_URI_MAX_LEN) return PL_ERR_TOO_LARGE;
    char scratch[PL_URI_MAX_LEN + 1];
    pl_err e = parse(out, s, len, now, scratch, soft);
    pl_wipe(scratch, len + 1);
    if (e != PL_OK) pl_uri_clear(out);
    return e;
}

pl_err pl_uri_parse(pl_uri *out, const char *s, size_t len, int64_t now) {
    return parse_entry(out, s, len, now, NULL);
}

pl_err pl_uri_inspect(pl_uri *out, const char *s, size_t len, int64_t now, pl_err *check) {
    PL_REQUIRE(check);
    return parse_entry(out, s, len, now, check);
}

/* ---- formatting ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    bool overflow;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->overflow || n > b->cap - b->len) {
        b->overflow = true;
        return;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
}

static void puts_(sbuf *b, const char *s) {
    put(b, s, strlen(s));
}

static void put_form(sbuf *b, const char *s) {
    static const char hexu[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '*' || c == '-' || c == '.' || c == '_') {
            put(b, (const char *)p, 1);
        } else if (c == ' ') {
            put(b, "+", 1);
        } else {
            char e[3] = {'%', hexu[c >> 4], hexu[c & 15]};
            put(b, e, 3);
        }
    }
}

pl_err pl_uri_format(char **out, const pl_uri *u) {
    PL_REQUIRE(out && u);
    *out = NULL;
    PL_REQUIRE(u->n_methods <= PL_URI_MAX_METHODS);

    size_t tl = strnlen(u->topic, sizeof u->topic);
    if (tl != 64 || !all_hex(u->topic, tl)) return PL_ERR_INVALID_ARG;
    size_t rl = strnlen(u->relay_protocol, sizeof u->relay_protocol);
    if (rl == 0 || rl == sizeof u->relay_protocol ||
        !pl__utf8_valid((const unsigned char *)u->relay_protocol, rl))
        return PL_ERR_INVALID_ARG;
    if (u->version <= 0 || u->expiry < 0) return PL_ERR_INVALID_ARG;
    if (u->relay_data) {
        size_t dl = strnlen(u->relay_data, PL_URI_MAX_LEN + 1);
        if (dl > PL_URI_MAX_LEN) return PL_ERR_TOO_LARGE;
        if (!pl__utf8_valid((const unsigned char *)u->relay_data, dl)) return PL_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < u->n_methods; i++) {
        PL_REQUIRE(u->methods[i]);
        size_t ml = strnlen(u->methods[i], PL_URI_MAX_LEN + 1);
        if (ml > PL_URI_MAX_LEN) return PL_ERR_TOO_LARGE;
        if (!method_name_ok(u->methods[i], ml) ||
            !pl__utf8_valid((const unsigned char *)u->methods[i], ml))
            return PL_ERR_INVALID_ARG;
    }

    /* Fixed stack buffer, wiped afterwards, so that no realloc leaves copies
     * of the symKey behind in freed heap memory. */
    char buf[PL_URI_MAX_LEN + 1];
    sbuf b = {buf, 0, PL_URI_MAX_LEN, false};
    /* Room for "expiryTimestamp=" + 19 digits of INT64_MAX + "&" + NUL:
     * a truncated snprintf would write a URI that no longer parses. */
    char num[48];

    puts_(&b, "wc:");
    for (size_t i = 0; i < tl; i++) {
        char c = u->topic[i];
        if (c >= 'A' && c <= 'F') c = (char)(c - 'A' + 'a');
        put(&b, &c, 1);
    }
    snprintf(num, sizeof num, "@%d?", u->version);
    puts_(&b, num);
    /* Sorted as JS localeCompare orders them. JS omits a zero expiry and an
     * empty relay-data; we also omit an empty method list (JS would write
     * "methods=", which parses back as [""]). */
    if (u->expiry != 0) {
        snprintf(num, sizeof num, "expiryTimestamp=%lld&", (long long)u->expiry);
        puts_(&b, num);
    }
    if (u->n_methods > 0) {
        puts_(&b, "methods=");
        for (size_t i = 0; i < u->n_methods; i++) {
            if (i) puts_(&b, "%2C");
            put_form(&b, u->methods[i]);
        }
        puts_(&b, "&");
    }
    if (u->relay_data && u->relay_data[0]) {
        puts_(&b, "relay-data=");
        put_form(&b, u->relay_data);
        puts_(&b, "&");
    }
    puts_(&b, "relay-protocol=");
    put_form(&b, u->relay_protocol);
    puts_(&b, "&symKey=");
    char key_hex[PL_HEX_SIZE(PL_SYMKEY_BYTES)];
    pl_err e = pl_hex_encode(key_hex, sizeof key_hex, u->sym_key, PL_SYMKEY_BYTES);
    if (e == PL_OK) put(&b, key_hex, 2 * PL_SYMKEY_BYTES);
    pl_wipe(key_hex, sizeof key_hex);

    if (e == PL_OK && b.overflow) e = PL_ERR_TOO_LARGE;
    if (e == PL_OK) {
        char *r = malloc(b.len + 1);
        if (!r) {
            e = PL_ERR_NOMEM;
        } else {
            memcpy(r, buf, b.len);
            r[b.len] = '\0';
            *out = r;
        }
    }
    pl_wipe(buf, sizeof buf);
    return e;
}

/* ---- creation and cleanup ---- */

pl_err pl_uri_new(pl_uri *out, const char *const *methods, size_t n_methods, int64_t now,
                  int64_t ttl) {
    return pl__uri_new(out, methods, n_methods, now, ttl, NULL, NULL);
}

pl_err pl__uri_new(pl_uri *out, const char *const *methods, size_t n_methods, int64_t now,
                   int64_t ttl, pl_rng_fn rng, void *rng_ctx) {
    PL_REQUIRE(out && (methods || n_methods == 0));
    PL_REQUIRE(now >= 0 && ttl >= 0);
    memset(out, 0, sizeof *out);
    if (ttl == 0) ttl = DEFAULT_TTL;
    PL_REQUIRE(ttl <= INT64_MAX - now);
    if (n_methods > PL_URI_MAX_METHODS) return PL_ERR_TOO_LARGE;

    pl_err e = PL_OK;
    for (size_t i = 0; i < n_methods && e == PL_OK; i++) {
        PL_REQUIRE(methods[i]);
        size_t ml = strnlen(methods[i], PL_URI_MAX_LEN + 1);
        if (ml > PL_URI_MAX_LEN)
            e = PL_ERR_TOO_LARGE;
        else if (!method_name_ok(methods[i], ml) ||
                 !pl__utf8_valid((const unsigned char *)methods[i], ml))
            e = PL_ERR_INVALID_ARG;
        else if (!(out->methods[i] = strdup(methods[i])))
            e = PL_ERR_NOMEM;
        else
            out->n_methods = i + 1;
    }
    if (e != PL_OK) {
        pl_uri_clear(out);
        return e;
    }

    pl__rng(rng, rng_ctx, out->sym_key, PL_SYMKEY_BYTES);
    uint8_t digest[PL_SHA256_BYTES];
    pl_sha256(digest, out->sym_key, PL_SYMKEY_BYTES);
    e = pl_hex_encode(out->topic, sizeof out->topic, digest, sizeof digest);
    if (e != PL_OK) {
        pl_uri_clear(out);
        return e;
    }
    out->version = 2;
    memcpy(out->relay_protocol, "irn", 4);
    out->expiry = now + ttl;
    return PL_OK;
}

void pl_uri_clear(pl_uri *u) {
    if (!u) return;
    free(u->relay_data);
    for (size_t i = 0; i < u->n_methods && i < PL_URI_MAX_METHODS; i++)
        free(u->methods[i]);
    pl_wipe(u, sizeof *u);
}
