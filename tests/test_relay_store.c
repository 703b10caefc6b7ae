/* SPDX-License-Identifier: Apache-2.0 */
/* The relay's SQLite mailbox, alone and fed by the relay core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay/relay_store.h"
#include "support/support.h"

#define T0 INT64_C(1700000000000)
#define DID_A "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"

static char dir[256];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pl-relay-store-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void db_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static pl__relay_record rec(const char *topic_fill, const char *message, int64_t expires, int64_t tag) {
    pl__relay_record r;
    memset(&r, 0, sizeof r);
    memset(r.topic, topic_fill[0], 64);
    memset(r.id, 'e', 64);
    r.id[0] = message[0];
    r.message = (char *)message;
    r.message_len = strlen(message);
    r.published_at_ms = T0;
    r.expires_at_ms = expires;
    r.tag = tag;
    return r;
}

typedef struct loaded {
    pl__relay_record r[16];
    char msg[16][64];
    char att[16][64];
    size_t n;
} loaded;

static pl_err collect(void *ud, const pl__relay_record *r) {
    loaded *l = ud;
    assert_true(l->n < 16);
    l->r[l->n] = *r;
    snprintf(l->msg[l->n], 64, "%.*s", (int)r->message_len, r->message);
    l->r[l->n].message = l->msg[l->n];
    if (r->attestation) {
        snprintf(l->att[l->n], 64, "%s", r->attestation);
        l->r[l->n].attestation = l->att[l->n];
    }
    l->n++;
    return PL_OK;
}

static void test_put_reopen_load_delete_prune(void **state) {
    (void)state;
    char path[300];
    db_path(path, sizeof path, "a.db");
    pl__relay_store *s;
    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    pl__relay_record r1 = rec("a", "first", T0 + 1000, 1100);
    pl__relay_record r2 = rec("b", "second", T0 + 5000, 1101);
    r2.attestation = "attestation-jwt";
    strcpy(r2.publisher, DID_A);
    pl__relay_record r3 = rec("c", "third", T0 + 9000, 0);
    assert_int_equal(pl__relay_store_begin(s), PL_OK);
    assert_true(pl__relay_store_in_tx(s));
    assert_int_equal(pl__relay_store_put(s, &r1), PL_OK);
    assert_int_equal(pl__relay_store_put(s, &r2), PL_OK);
    assert_int_equal(pl__relay_store_put(s, &r2), PL_OK); /* duplicate: ignored */
    assert_int_equal(pl__relay_store_commit(s), PL_OK);
    assert_false(pl__relay_store_in_tx(s));
    /* A rolled-back transaction leaves nothing. */
    assert_int_equal(pl__relay_store_begin(s), PL_OK);
    assert_int_equal(pl__relay_store_put(s, &r3), PL_OK);
    pl__relay_store_rollback(s);
    size_t n;
    assert_int_equal(pl__relay_store_count(s, &n), PL_OK);
    assert_int_equal(n, 2);
    /* Outside a transaction a write commits by itself. */
    assert_int_equal(pl__relay_store_put(s, &r3), PL_OK);
    pl__relay_store_close(s);

    /* The file is in WAL mode. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);

    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    loaded l = {0};
    size_t skipped = 9;
    assert_int_equal(pl__relay_store_load(s, T0, collect, &l, &skipped), PL_OK);
    assert_int_equal(skipped, 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.msg[0], "first");
    assert_string_equal(l.msg[1], "second");
    assert_string_equal(l.msg[2], "third");
    assert_memory_equal(l.r[1].topic, r2.topic, 65);
    assert_memory_equal(l.r[1].id, r2.id, 65);
    assert_string_equal(l.r[1].attestation, "attestation-jwt");
    assert_null(l.r[0].attestation);
    assert_string_equal(l.r[1].publisher, DID_A);
    assert_string_equal(l.r[0].publisher, "");
    assert_int_equal(l.r[1].tag, 1101);
    assert_int_equal(l.r[1].published_at_ms, T0);
    assert_int_equal(l.r[1].expires_at_ms, T0 + 5000);

    /* Load skips what expired; prune deletes it. */
    memset(&l, 0, sizeof l);
    assert_int_equal(pl__relay_store_load(s, T0 + 1000, collect, &l, NULL), PL_OK);
    assert_int_equal(l.n, 2);
    size_t pruned;
    assert_int_equal(pl__relay_store_prune(s, T0 + 1000, &pruned), PL_OK);
    assert_int_equal(pruned, 1);
    assert_int_equal(pl__relay_store_del(s, r2.topic, r2.id), PL_OK);
    assert_int_equal(pl__relay_store_del(s, r2.topic, r2.id), PL_OK); /* missing: fine */
    assert_int_equal(pl__relay_store_count(s, &n), PL_OK);
    assert_int_equal(n, 1);
    pl__relay_store_close(s);
}

static pl_err stop_after_one(void *ud, const pl__relay_record *r) {
    (void)r;
    int *calls = ud;
    return ++*calls == 1 ? PL_ERR_NOMEM : PL_OK;
}

static void test_malformed_rows_and_callback_errors(void **state) {
    (void)state;
    char path[300];
    db_path(path, sizeof path, "b.db");
    pl__relay_store *s;
    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    pl__relay_record r = rec("a", "ok", T0 + 1000, 0);
    assert_int_equal(pl__relay_store_put(s, &r), PL_OK);
    pl__relay_store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "INSERT INTO relay_messages(topic,id,message,published_at,expires_at,tag)"
                                  " VALUES('short','x','m',0,9999999999999,0);"
                                  "INSERT INTO relay_messages(topic,id,message,published_at,expires_at,tag)"
                                  " VALUES(printf('%064d',1),printf('%064d',2),x'00ff',0,9999999999999,0);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    loaded l = {0};
    size_t skipped;
    assert_int_equal(pl__relay_store_load(s, T0, collect, &l, &skipped), PL_OK);
    assert_int_equal(l.n, 1);
    assert_int_equal(skipped, 2);
    int calls = 0;
    assert_int_equal(pl__relay_store_load(s, T0, stop_after_one, &calls, NULL), PL_ERR_NOMEM);
    assert_int_equal(calls, 1);
    /* The statement was reset: the store still works. */
    memset(&l, 0, sizeof l);
    assert_int_equal(pl__relay_store_load(s, T0, collect, &l, NULL), PL_OK);
    assert_int_equal(l.n, 1);
    pl__relay_store_close(s);
}

static void test_refuses_foreign_files(void **state) {
    (void)state;
    char path[300];
    db_path(path, sizeof path, "garbage.db");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++) fputc((i * 7919) & 0xff, f);
    fclose(f);
    pl__relay_store *s = (pl__relay_store *)path;
    assert_int_equal(pl__relay_store_open(&s, path), PL_ERR_STORE_CORRUPT);
    assert_null(s);

    db_path(path, sizeof path, "future.db");
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(pl__relay_store_open(&s, path), PL_ERR_STORE_CORRUPT);

    db_path(path, sizeof path, "no/such/dir/x.db");
    assert_int_equal(pl__relay_store_open(&s, path), PL_ERR_STORE);
    assert_true(pl_last_detail() != 0);
}

static unsigned mode_of(const char *path) {
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 0777;
}

/* The mailbox and its WAL are owner-only whatever the umask, and an older,
 * wider file is narrowed when it is opened. */
static void test_files_are_owner_only(void **state) {
    (void)state;
    char path[300], side[320];
    mode_t old = umask(022);
    db_path(path, sizeof path, "mode.db");
    pl__relay_store *s;
    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    pl__relay_record r = rec("a", "mode", T0 + 1000, 0);
    assert_int_equal(pl__relay_store_begin(s), PL_OK);
    assert_int_equal(pl__relay_store_put(s, &r), PL_OK);
    assert_int_equal(pl__relay_store_commit(s), PL_OK);
    assert_int_equal(mode_of(path), 0600);
    snprintf(side, sizeof side, "%s-wal", path);
    assert_int_equal(mode_of(side), 0600);
    snprintf(side, sizeof side, "%s-shm", path);
    assert_int_equal(mode_of(side), 0600);
    pl__relay_store_close(s);

    assert_int_equal(chmod(path, 0644), 0);
    snprintf(side, sizeof side, "%s-wal", path);
    FILE *f = fopen(side, "ab"); /* a WAL left behind by an older relay */
    assert_non_null(f);
    fclose(f);
    assert_int_equal(chmod(side, 0644), 0);
    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    assert_int_equal(mode_of(path), 0600);
    pl__relay_store_close(s);
    umask(old);
}

static void test_memory_store(void **state) {
    (void)state;
    pl__relay_store *s;
    assert_int_equal(pl__relay_store_open(&s, NULL), PL_OK);
    pl__relay_record r = rec("a", "mem", T0 + 1000, 0);
    assert_int_equal(pl__relay_store_put(s, &r), PL_OK);
    size_t n;
    assert_int_equal(pl__relay_store_count(s, &n), PL_OK);
    assert_int_equal(n, 1);
    pl__relay_store_close(s);
    assert_int_equal(pl__relay_store_open(&s, ":memory:"), PL_OK);
    assert_int_equal(pl__relay_store_count(s, &n), PL_OK);
    assert_int_equal(n, 0);
    pl__relay_store_close(s);
    pl__relay_store_close(NULL);
}

/* The core's store actions applied to the store, then a fresh core restored
 * from it: what was acknowledged is delivered after the "restart". */
static pl_err restore_into(void *ud, const pl__relay_record *r) {
    return pl__relay_core_restore(ud, r, T0 + 10);
}

static void test_core_and_store_survive_restart(void **state) {
    (void)state;
    char path[300], t[65];
    db_path(path, sizeof path, "restart.db");
    memset(t, '7', 64);
    t[64] = '\0';
    pl__relay_store *s;
    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    pl__relay_core *c;
    assert_int_equal(pl__relay_core_new(&c, NULL, T0), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 1, DID_A, NULL, T0), PL_OK);
    char frame[512];
    int acks = 0;
    for (int i = 0; i < 3; i++) {
        int n = snprintf(frame, sizeof frame,
                         "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":"
                         "\"%s\",\"message\":\"durable-%d\",\"ttl\":60,\"tag\":9}}",
                         i, t, i);
        assert_int_equal(pl__relay_core_receive(c, 1, frame, (size_t)n, T0 + i), PL_OK);
        pl__relay_action a;
        bool stored = false;
        assert_int_equal(pl__relay_store_begin(s), PL_OK);
        while (pl__relay_core_pop(c, &a)) {
            if (a.kind == PL__RELAY_STORE_PUT) {
                assert_int_equal(pl__relay_store_put(s, &a.rec), PL_OK);
                stored = true;
            } else if (a.kind == PL__RELAY_SEND) {
                assert_true(stored); /* the ack comes after the write */
                assert_non_null(strstr(a.text, "\"result\":true"));
                acks++;
            }
            pl__relay_action_release(&a);
        }
        assert_int_equal(pl__relay_store_commit(s), PL_OK);
    }
    assert_int_equal(acks, 3);
    pl__relay_core_free(c); /* "crash": nothing else is flushed */
    pl__relay_store_close(s);

    assert_int_equal(pl__relay_store_open(&s, path), PL_OK);
    assert_int_equal(pl__relay_core_new(&c, NULL, T0 + 10), PL_OK);
    assert_int_equal(pl__relay_store_load(s, T0 + 10, restore_into, c, NULL), PL_OK);
    assert_int_equal(pl__relay_core_open(c, 2, NULL, NULL, T0 + 10), PL_OK);
    int n = snprintf(frame, sizeof frame,
                     "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t);
    assert_int_equal(pl__relay_core_receive(c, 2, frame, (size_t)n, T0 + 10), PL_OK);
    pl__relay_action a;
    int pushes = 0;
    while (pl__relay_core_pop(c, &a)) {
        if (a.kind == PL__RELAY_SEND && strstr(a.text, "irn_subscription")) {
            char want[32];
            snprintf(want, sizeof want, "durable-%d", pushes);
            assert_non_null(strstr(a.text, want));
            pushes++;
        }
        pl__relay_action_release(&a);
    }
    assert_int_equal(pushes, 3);
    pl__relay_core_free(c);
    pl__relay_store_close(s);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_reopen_load_delete_prune),
        cmocka_unit_test(test_malformed_rows_and_callback_errors),
        cmocka_unit_test(test_refuses_foreign_files),
        cmocka_unit_test(test_memory_store),
        cmocka_unit_test(test_files_are_owner_only),
        cmocka_unit_test(test_core_and_store_survive_restart),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
