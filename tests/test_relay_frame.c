/* SPDX-License-Identifier: Apache-2.0 */
/* The relay core's fast path (issue 12): the simdjson frame reader
 * (relay/frame.h), the JSON writer of the hot frames (held to what jansson
 * writes), and the core answering the same whichever path reads a frame. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/frame.h"
#include "relay/relay_core.h"
#include "support/support.h"

#define T0 INT64_C(1700000000000)

/* relay/internal.h (not included whole: it needs the core's private types) */
size_t pl__rs_json_string_len(const char *s, size_t len);
char *pl__rs_json_escape(char *out, const char *s, size_t len);

static pl__rs_frame parse(pl__rs_parser *p, const char *text) {
    pl__rs_frame f;
    pl__rs_parse_frame(p, text, strlen(text), &f);
    return f;
}

static void test_reader_kinds(void **state) {
    (void)state;
    pl__rs_parser *p = pl__rs_parser_new(1 << 20);
    assert_non_null(p);
    static const char T[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    char buf[1024];
    snprintf(
        buf, sizeof buf,
        "{\"id\":17,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\","
        "\"message\":\"a\\\"b\\n\\u00e9\",\"ttl\":30,\"tag\":1100,\"prompt\":true,"
        "\"attestation\":\"xyz\"}}",
        T);
    pl__rs_frame f = parse(p, buf);
    assert_int_equal(f.kind, PL__RS_FRAME_PUBLISH);
    assert_int_equal(f.id, 17);
    assert_int_equal(f.topic_len, 64);
    assert_int_equal(f.message_len, 6);
    assert_memory_equal(f.message, "a\"b\n\xc3\xa9", 6);
    assert_true(f.has_ttl && f.ttl == 30 && f.has_tag && f.tag == 1100);
    assert_int_equal(f.attestation_len, 3);

    f = parse(p, "{\"id\":9007199254740993,\"jsonrpc\":\"2.0\",\"result\":true}");
    assert_int_equal(f.kind, PL__RS_FRAME_RESPONSE);
    assert_true(f.id == INT64_C(9007199254740993)); /* beyond a double's 2^53 */
    snprintf(
        buf, sizeof buf,
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}",
        T);
    assert_int_equal(parse(p, buf).kind, PL__RS_FRAME_SUBSCRIBE);

    /* Everything unusual goes to jansson's path (kind OTHER). */
    static const char *other[] = {
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true",                 /* not JSON */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true,\"result\":1}",   /* duplicate */
        "{\"id\":1,\"id\":2,\"jsonrpc\":\"2.0\",\"result\":true}",       /* duplicate id */
        "{\"id\":\"x\",\"jsonrpc\":\"2.0\",\"result\":true}",            /* string id */
        "{\"id\":1,\"jsonrpc\":\"1.0\",\"result\":true}",                /* version */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":{\"a\":1,\"a\":2}}",   /* nested result */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true,\"error\":null}", /* both */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"a\","
        "\"message\":\"a\\u0000b\",\"ttl\":30}}", /* NUL */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"a\","
        "\"message\":\"m\",\"ttl\":30,\"x\":{\"y\":1,\"y\":2}}}", /* nested unknown */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"a\","
        "\"message\":\"m\",\"ttl\":30,\"ttl\":31}}", /* duplicate param */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"a\","
        "\"message\":\"m\",\"ttl\":\"30\"}}", /* ttl a string */
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"a\"}}",
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":"
        "\"a\"}}",
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"\",\"params\":{}}",
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\"}",
        "[{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true}]",
        "{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":\"\xff\"}", /* not UTF-8 */
    };
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        f = parse(p, other[i]);
        if (f.kind != PL__RS_FRAME_OTHER) fail_msg("taken: %s", other[i]);
    }
    pl__rs_parser_free(p);
}

/* A random valid UTF-8 string: ASCII with every control character, quotes,
 * backslashes, and 2-, 3- and 4-byte characters. */
static size_t random_text(uint64_t *rng, char *out, size_t max) {
    size_t n = 0, want = pl_test_rand(rng) % max;
    while (n + 4 < want) {
        uint64_t r = pl_test_rand(rng);
        switch (r % 6) {
        case 0:
            out[n++] = (char)(r >> 8 & 0x1f);
            break; /* control */
        case 1:
            out[n++] = "\"\\/\x7f"[r >> 8 & 3];
            break;
        case 2:
            out[n++] = (char)(0x20 + (r >> 8) % 95);
            break;
        case 3: {
            unsigned cp = 0x80 + (unsigned)((r >> 8) % 0x780);
            out[n++] = (char)(0xc0 | cp >> 6);
            out[n++] = (char)(0x80 | (cp & 63));
            break;
        }
        case 4: {
            unsigned cp = 0x2000 + (unsigned)((r >> 8) % 0x100); /* incl. U+2028, U+2029 */
            out[n++] = (char)(0xe0 | cp >> 12);
            out[n++] = (char)(0x80 | (cp >> 6 & 63));
            out[n++] = (char)(0x80 | (cp & 63));
            break;
        }
        default: {
            unsigned cp = 0x10000 + (unsigned)((r >> 8) % 0x1000);
            out[n++] = (char)(0xf0 | cp >> 18);
            out[n++] = (char)(0x80 | (cp >> 12 & 63));
            out[n++] = (char)(0x80 | (cp >> 6 & 63));
            out[n++] = (char)(0x80 | (cp & 63));
        }
        }
    }
    return n;
}

static void test_escape_matches_jansson(void **state) {
    (void)state;
    uint64_t rng = pl_test_seed();
    char in[600], out[600 * 6 + 2];
    for (int i = 0; i < 3000; i++) {
        size_t n = random_text(&rng, in, sizeof in);
        json_t *s = json_stringn(in, n);
        assert_non_null(s);
        char *want = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
        assert_non_null(want);
        char *end = pl__rs_json_escape(out, in, n);
        size_t got = (size_t)(end - out);
        assert_int_equal(got, strlen(want));
        assert_int_equal(pl__rs_json_string_len(in, n), got);
        assert_memory_equal(out, want, got);
        free(want);
        json_decref(s);
    }
}

static void drain(pl__relay_core *c, char ***texts, uint64_t **conns, size_t *n) {
    pl__relay_action a;
    *n = 0;
    while (pl__relay_core_pop(c, &a)) {
        if (a.kind == PL__RELAY_SEND) {
            pl__relay_core_sent(c, a.conn, a.len);
            *texts = realloc(*texts, (*n + 1) * sizeof **texts);
            *conns = realloc(*conns, (*n + 1) * sizeof **conns);
            (*texts)[*n] = strdup(a.text);
            (*conns)[*n] = a.conn;
            ++*n;
        }
        pl__relay_action_release(&a);
    }
}

/* The same requests through the fast reader and through jansson's path (a
 * whitespace inside the frame's nested params with a nested unknown value
 * sends it there): every frame the core writes is the same text, and it is
 * what jansson writes for the same tree. */
static void test_fast_and_jansson_paths_answer_alike(void **state) {
    (void)state;
    uint64_t rng = pl_test_seed();
    static const char T[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    for (int round = 0; round < 200; round++) {
        char msg[300], esc[300 * 6 + 2];
        size_t ml = 0;
        while (!ml)
            ml = random_text(&rng, msg, sizeof msg);
        for (size_t i = 0; round % 10 && i < ml; i++) /* NUL (refused) in one round of ten */
            if (!msg[i]) msg[i] = 1;
        *pl__rs_json_escape(esc, msg, ml) = '\0';
        int64_t ttl = round % 7 == 0 ? 5 : 30; /* some refused: the error answers too */
        char *texts[2] = {0};
        for (int path = 0; path < 2; path++) {
            pl__relay_core *c;
            assert_int_equal(pl__relay_core_new(&c, NULL, T0), PL_OK);
            assert_int_equal(pl__relay_core_open(c, 1, NULL, "192.0.2.1", T0), PL_OK);
            assert_int_equal(pl__relay_core_open(c, 2, NULL, "192.0.2.2", T0), PL_OK);
            const char *extra = path ? ",\"x\":{\"y\":[1]}" : "";
            char buf[4096];
            snprintf(buf, sizeof buf,
                     "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{"
                     "\"topic\":\"%s\"%s}}",
                     T, extra);
            assert_int_equal(pl__relay_core_receive(c, 2, buf, strlen(buf), T0), PL_OK);
            snprintf(buf, sizeof buf,
                     "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{"
                     "\"topic\":\"%s\",\"message\":%s,\"ttl\":%lld,\"tag\":%d%s%s}}",
                     round + 100, T, esc, (long long)ttl, round,
                     round % 3 ? "" : ",\"attestation\":\"a\\tb\"", extra);
            (void)pl__relay_core_receive(c, 1, buf, strlen(buf), T0 + 1);
            snprintf(buf, sizeof buf, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true%s}",
                     (long long)T0 * 1000, path ? ",\"x\":[{}]" : "");
            assert_int_equal(pl__relay_core_receive(c, 2, buf, strlen(buf), T0 + 2), PL_OK);
            char **tx = NULL;
            uint64_t *cn = NULL;
            size_t n;
            drain(c, &tx, &cn, &n);
            size_t total = 0;
            for (size_t i = 0; i < n; i++)
                total += strlen(tx[i]) + 24;
            texts[path] = calloc(1, total + 1);
            pl__rs_parser *rd = pl__rs_parser_new(1 << 20);
            assert_non_null(rd);
            size_t pushes = 0;
            for (size_t i = 0; i < n; i++) {
                sprintf(texts[path] + strlen(texts[path]), "%llu:%s\n", (unsigned long long)cn[i],
                        tx[i]);
                /* a client reads the push back with the fast reader */
                pl__rs_frame pf;
                pl__rs_parse_frame(rd, tx[i], strlen(tx[i]), &pf);
                if (pf.kind == PL__RS_FRAME_PUSH) {
                    pushes++;
                    assert_int_equal(cn[i], 2);
                    assert_int_equal(pf.message_len, ml);
                    assert_memory_equal(pf.message, msg, ml);
                    assert_int_equal(pf.topic_len, 64);
                    assert_int_equal(pf.sub_id_len, 64);
                    assert_true(pf.published_at == T0 + 1 && pf.has_tag && pf.tag == round);
                    assert_true(round % 3 ? !pf.attestation : pf.attestation_len == 3);
                }
                /* what jansson writes for the same tree */
                json_error_t je;
                json_t *j = json_loads(tx[i], 0, &je);
                assert_non_null(j);
                char *again = json_dumps(j, JSON_COMPACT);
                assert_string_equal(again, tx[i]);
                free(again);
                json_decref(j);
                free(tx[i]);
            }
            pl__rs_parser_free(rd);
            /* (jansson refuses a message holding \u0000 on either path: no push) */
            assert_int_equal(pushes, ttl == 30 && !memchr(msg, 0, ml) ? 1 : 0);
            pl__relay_stats st;
            pl__relay_core_stats(c, &st);
            assert_int_equal(st.inflight, 0); /* the ack was taken either way */
            free(tx);
            free(cn);
            pl__relay_core_free(c);
        }
        assert_string_equal(texts[0], texts[1]);
        free(texts[0]);
        free(texts[1]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_kinds),
        cmocka_unit_test(test_escape_matches_jansson),
        cmocka_unit_test(test_fast_and_jansson_paths_answer_alike),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
