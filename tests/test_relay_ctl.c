/* SPDX-License-Identifier: Apache-2.0 */
/* The control plane between relay cluster instances (relay/cluster_ctl.h):
 * its messages, and its state (who is here, the rooms out) with time only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/cluster_ctl.h"

#define T0 INT64_C(1000000)

static const char topic[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

/* n ids: "0000...", "1111...", ... */
static char *ids_of(size_t n) {
    char *ids = malloc(n * PL_RELAY_ID_HEX + 1);
    assert_non_null(ids);
    for (size_t i = 0; i < n; i++)
        memset(ids + i * PL_RELAY_ID_HEX, "0123456789abcdef"[i % 16], PL_RELAY_ID_HEX);
    return ids;
}

/* The answer of instance `who` with these flags, as parse gives it. */
static pl__relay_ctl answer_of(const char *who, const char *t, const uint8_t *flags, size_t n) {
    char *text;
    size_t len;
    assert_int_equal(pl__relay_ctl_format(who, t, NULL, 0, flags, n, &text, &len), PL_OK);
    pl__relay_ctl m;
    assert_int_equal(pl__relay_ctl_parse(text, len, &m), PL_OK);
    free(text);
    return m;
}

static void test_messages(void **state) {
    (void)state;
    char *ids = ids_of(3), *text;
    size_t len;
    assert_int_equal(pl__relay_ctl_format("relay-a", topic, ids, 3, NULL, 0, &text, &len), PL_OK);
    pl__relay_ctl m;
    assert_int_equal(pl__relay_ctl_parse(text, len, &m), PL_OK);
    assert_string_equal(m.instance, "relay-a");
    assert_string_equal(m.topic, topic);
    assert_true(m.has_ids && !m.has_flags);
    assert_int_equal(m.nids, 3);
    assert_memory_equal(m.ids, ids, 3 * PL_RELAY_ID_HEX);
    free(text);
    free(ids);
    static const char *const bad[] = {
        "",
        "[]",
        "{\"v\":2,\"i\":\"a\"}",
        "{\"v\":1}",
        "{\"v\":1,\"i\":\"\"}",
        "{\"v\":1,\"i\":\"a b\"}",
        "{\"v\":1,\"i\":\"a\",\"t\":\"AB\"}",
        "{\"v\":1,\"i\":\"a\",\"ids\":\"abc\"}",
        "{\"v\":1,\"i\":\"a\",\"f\":\"04\"}",
        "{\"v\":1,\"i\":\"a\",\"i\":\"b\"}",
        "{\"v\":1,\"i\":\"a\\u0000b\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pl_err e = pl__relay_ctl_parse(bad[i], strlen(bad[i]), &m);
        assert_true(e == PL_ERR_JSON || e == PL_ERR_INVALID_ARG);
        assert_string_equal(m.instance, "");
    }
    char big[PL__RELAY_CTL_MAX + 2];
    memset(big, ' ', sizeof big);
    assert_int_equal(pl__relay_ctl_parse(big, sizeof big, &m), PL_ERR_TOO_LARGE);
    uint8_t f = 4;
    assert_int_equal(pl__relay_ctl_format("a", NULL, NULL, 0, &f, 1, &text, &len),
                     PL_ERR_INVALID_ARG);
    assert_int_equal(pl__relay_ctl_format("a b", NULL, NULL, 0, NULL, 0, &text, &len),
                     PL_ERR_INVALID_ARG);
}

/* Presence: newcomers, heartbeats, bye, silence; self is never a member. */
static void test_members(void **state) {
    (void)state;
    pl__relay_plane *p;
    assert_int_equal(pl__relay_plane_new(&p, "bad id", T0), PL_ERR_INVALID_ARG);
    assert_int_equal(pl__relay_plane_new(&p, "self", T0), PL_OK);
    assert_int_equal(pl__relay_plane_deadline(p), INT64_MAX);
    assert_int_equal(pl__relay_plane_seen(p, "self", T0), 0);
    assert_int_equal(pl__relay_plane_seen(p, "b", T0), 1);
    assert_int_equal(pl__relay_plane_seen(p, "b", T0 + 1000), 0);
    assert_int_equal(pl__relay_plane_seen(p, "c", T0 + 2000), 1);
    assert_int_equal(pl__relay_plane_members(p), 2);
    assert_int_equal(pl__relay_plane_deadline(p), T0 + 1000 + PL__RELAY_CTL_LOST_MS);
    char id[PL__RELAY_INSTANCE_MAX + 1];
    assert_false(pl__relay_plane_expire(p, T0 + 1000 + PL__RELAY_CTL_LOST_MS - 1, id));
    assert_true(pl__relay_plane_expire(p, T0 + 1000 + PL__RELAY_CTL_LOST_MS, id));
    assert_string_equal(id, "b");
    assert_false(pl__relay_plane_expire(p, T0 + 1000 + PL__RELAY_CTL_LOST_MS, id));
    assert_true(pl__relay_plane_gone(p, "c"));
    assert_false(pl__relay_plane_gone(p, "c"));
    assert_int_equal(pl__relay_plane_members(p), 0);
    pl__relay_plane_free(p);
}

/* A room waits for every member; flags combine (DONE from all, ACKED from
 * one); it is decided when all answered, or fails at its deadline naming a
 * silent one; a member that leaves is no longer waited for. */
static void test_rooms(void **state) {
    (void)state;
    pl__relay_plane *p;
    int64_t now = T0 + PL__RELAY_CTL_LOST_MS; /* past the warm-up */
    assert_int_equal(pl__relay_plane_new(&p, "self", T0), PL_OK);
    assert_int_equal(pl__relay_plane_seen(p, "b", now), 1);
    assert_int_equal(pl__relay_plane_seen(p, "c", now), 1);
    char *ids = ids_of(3);
    uint64_t tok;
    bool ask;
    assert_int_equal(pl__relay_plane_room(p, topic, ids, 3, now, &tok, &ask), PL_OK);
    assert_true(ask && tok);
    pl__relay_room_done d;
    assert_false(pl__relay_plane_take(p, now, &d));
    const uint8_t fb[] = {PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED, PL_RELAY_ROOM_DONE, 0};
    const uint8_t fc[] = {PL_RELAY_ROOM_DONE, PL_RELAY_ROOM_DONE, PL_RELAY_ROOM_ACKED};
    pl__relay_ctl m = answer_of("b", topic, fb, 3);
    assert_int_equal(pl__relay_plane_answer(p, tok + 1, &m, now), PL_ERR_NOT_FOUND);
    pl__relay_ctl wrong = answer_of("c", topic, fc, 2); /* not one flag per id */
    assert_int_equal(pl__relay_plane_answer(p, tok, &wrong, now), PL_ERR_INVALID_ARG);
    assert_int_equal(pl__relay_plane_answer(p, tok, &m, now), PL_OK);
    assert_false(pl__relay_plane_take(p, now, &d)); /* c has not answered */
    m = answer_of("c", topic, fc, 3);
    assert_int_equal(pl__relay_plane_answer(p, tok, &m, now + 5), PL_OK);
    assert_int_equal(pl__relay_plane_deadline(p), INT64_MIN); /* decided: take it now */
    assert_true(pl__relay_plane_take(p, now + 5, &d));
    assert_string_equal(d.topic, topic);
    assert_int_equal(d.n, 3);
    assert_memory_equal(d.ids, ids, 3 * PL_RELAY_ID_HEX);
    assert_non_null(d.flags);
    assert_int_equal(d.flags[0], PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED);
    assert_int_equal(d.flags[1], PL_RELAY_ROOM_DONE);
    assert_int_equal(d.flags[2], PL_RELAY_ROOM_ACKED); /* b was not done with it */
    free(d.ids);
    free(d.flags);
    assert_int_equal(pl__relay_plane_rooms(p), 0);
    assert_int_equal(pl__relay_plane_answer(p, tok, &m, now), PL_ERR_NOT_FOUND);

    /* c is silent: the room fails at its deadline and names it. */
    assert_int_equal(pl__relay_plane_room(p, topic, ids, 3, now, &tok, &ask), PL_OK);
    m = answer_of("b", topic, fb, 3);
    assert_int_equal(pl__relay_plane_answer(p, tok, &m, now), PL_OK);
    assert_int_equal(pl__relay_plane_deadline(p), now + PL__RELAY_CTL_ROOM_WAIT_MS);
    assert_false(pl__relay_plane_take(p, now + PL__RELAY_CTL_ROOM_WAIT_MS - 1, &d));
    assert_true(pl__relay_plane_take(p, now + PL__RELAY_CTL_ROOM_WAIT_MS, &d));
    assert_null(d.flags);
    assert_string_equal(d.silent, "c");
    free(d.ids);

    /* c says bye while a room waits for it: decided with b's answer alone. */
    assert_int_equal(pl__relay_plane_room(p, topic, ids, 3, now, &tok, &ask), PL_OK);
    assert_int_equal(pl__relay_plane_answer(p, tok, &m, now), PL_OK);
    assert_true(pl__relay_plane_gone(p, "c"));
    assert_true(pl__relay_plane_take(p, now, &d));
    assert_non_null(d.flags);
    free(d.ids);
    free(d.flags);

    /* Nobody else: nothing to ask, decided at once, every flag DONE only. */
    assert_true(pl__relay_plane_gone(p, "b"));
    assert_int_equal(pl__relay_plane_room(p, topic, ids, 3, now, &tok, &ask), PL_OK);
    assert_false(ask);
    assert_true(pl__relay_plane_take(p, now, &d));
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(d.flags[i], PL_RELAY_ROOM_DONE);
    free(d.ids);
    free(d.flags);
    assert_int_equal(pl__relay_plane_room(p, "short", ids, 3, now, &tok, &ask), PL_ERR_INVALID_ARG);
    free(ids);
    pl__relay_plane_free(p);
}

/* In its first PL__RELAY_CTL_LOST_MS an instance may not know everyone: its
 * rooms ask even with nobody known, wait their whole time, and take every
 * answer, also from an instance they did not wait for. */
static void test_warmup(void **state) {
    (void)state;
    pl__relay_plane *p;
    assert_int_equal(pl__relay_plane_new(&p, "self", T0), PL_OK);
    char *ids = ids_of(2);
    uint64_t tok;
    bool ask;
    assert_int_equal(pl__relay_plane_room(p, topic, ids, 2, T0 + 10, &tok, &ask), PL_OK);
    assert_true(ask);
    pl__relay_room_done d;
    assert_false(pl__relay_plane_take(p, T0 + 10, &d));
    const uint8_t f[] = {PL_RELAY_ROOM_DONE, 0};
    pl__relay_ctl m = answer_of("late", topic, f, 2);
    assert_int_equal(pl__relay_plane_answer(p, tok, &m, T0 + 20), PL_OK);
    assert_int_equal(pl__relay_plane_members(p), 1); /* heard through its answer */
    assert_false(pl__relay_plane_take(p, T0 + 20, &d));
    assert_true(pl__relay_plane_take(p, T0 + 10 + PL__RELAY_CTL_ROOM_WAIT_MS, &d));
    assert_non_null(d.flags);
    assert_int_equal(d.flags[0], PL_RELAY_ROOM_DONE);
    assert_int_equal(d.flags[1], 0); /* the late one vetoed it */
    free(d.ids);
    free(d.flags);
    free(ids);
    pl__relay_plane_free(p);
}

/* More instances than it can follow: rooms refuse (never decided without
 * one of them). */
static void test_overflow(void **state) {
    (void)state;
    pl__relay_plane *p;
    assert_int_equal(pl__relay_plane_new(&p, "self", T0), PL_OK);
    char id[16];
    for (int i = 0; i < PL__RELAY_CTL_MEMBERS_MAX; i++) {
        snprintf(id, sizeof id, "i%d", i);
        assert_int_equal(pl__relay_plane_seen(p, id, T0), 1);
    }
    assert_int_equal(pl__relay_plane_seen(p, "one-more", T0), -1);
    char *ids = ids_of(1);
    uint64_t tok;
    bool ask;
    assert_int_equal(pl__relay_plane_room(p, topic, ids, 1, T0, &tok, &ask), PL_ERR_RELAY_BUSY);
    free(ids);
    pl__relay_plane_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_messages), cmocka_unit_test(test_members),
        cmocka_unit_test(test_rooms),    cmocka_unit_test(test_warmup),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
