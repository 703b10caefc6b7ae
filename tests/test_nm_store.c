/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager persistence (nm_store.h): the identity key file beside the
 * store, counterparties (insert, update, touch, remove, list, find by id
 * prefix or name), damaged rows, and SQLite failures reported as named
 * errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "pairlink/crypto.h"
#include "pairlink/nm_store.h"
#include "pairlink/store.h"
#include "store/store_internal.h"
#include "support/support.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pl-nmstore-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static pl_nm_counterparty cp(uint8_t fill, pl_nm_role role, const char *name, int64_t first) {
    pl_nm_counterparty c;
    memset(&c, 0, sizeof c);
    memset(c.pub, fill, sizeof c.pub);
    c.role = role;
    snprintf(c.name, sizeof c.name, "%s", name);
    c.first_seen_ms = c.last_seen_ms = first;
    return c;
}

static void test_identity(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/node.db", dir);
    uint8_t priv[32], pub[32], priv2[32], pub2[32], check[32];
    bool created = false;
    assert_int_equal(pl_nm_store_identity(path, priv, pub, &created), PL_OK);
    assert_true(created);
    pl_x25519_public(check, priv);
    assert_memory_equal(check, pub, 32);
    /* the key file beside the store, 0600; the same key next time */
    char key[160];
    snprintf(key, sizeof key, "%s.key", path);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(pl_nm_store_identity(path, priv2, pub2, &created), PL_OK);
    assert_false(created);
    assert_memory_equal(priv, priv2, 32);
    assert_memory_equal(pub, pub2, 32);
    assert_int_equal(pl_nm_store_identity(path, priv2, pub2, NULL), PL_OK);
    /* in memory: fresh every time */
    assert_int_equal(pl_nm_store_identity(":memory:", priv2, pub2, &created), PL_OK);
    assert_true(created);
    assert_memory_not_equal(priv, priv2, 32);
    assert_int_equal(pl_nm_store_identity("", priv2, pub2, NULL), PL_OK);
    /* a path whose key file name would not fit; an unsafe key file */
    char *longp = malloc(PATH_MAX + 10);
    memset(longp, 'a', PATH_MAX + 9);
    longp[PATH_MAX + 9] = 0;
    uint8_t zero[32] = {0};
    assert_int_equal(pl_nm_store_identity(longp, priv2, pub2, NULL), PL_ERR_TOO_LARGE);
    assert_memory_equal(priv2, zero, 32);
    free(longp);
    assert_int_equal(chmod(key, 0644), 0);
    assert_int_equal(pl_nm_store_identity(path, priv2, pub2, NULL), PL_ERR_KEY_FILE);
}

static void test_counterparties(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/peers.db", dir);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    assert_int_equal(pl_nm_store_init(s), PL_OK);
    assert_int_equal(pl_nm_store_init(s), PL_OK); /* idempotent */
    pl_nm_counterparty *all = (pl_nm_counterparty *)&s;
    size_t n = 99;
    assert_int_equal(pl_nm_store_list(s, &all, &n), PL_OK);
    assert_null(all);
    assert_int_equal(n, 0);

    pl_nm_counterparty a = cp(0xa1, PL_NM_ROLE_APP, "Nimbus GUI", 2000);
    pl_nm_counterparty b = cp(0xb2, PL_NM_ROLE_NODE_MANAGER, "", 1000);
    pl_nm_counterparty c = cp(0xa1, PL_NM_ROLE_APP, "other", 3000);
    c.pub[31] = 0xcc; /* shares a's first bytes */
    assert_int_equal(pl_nm_store_put(s, &a), PL_OK);
    assert_int_equal(pl_nm_store_put(s, &b), PL_OK);
    assert_int_equal(pl_nm_store_put(s, &c), PL_OK);
    /* an update keeps first_seen */
    a.first_seen_ms = 9999;
    snprintf(a.fingerprint, sizeof a.fingerprint, "ABCD-EFGH");
    assert_int_equal(pl_nm_store_put(s, &a), PL_OK);
    assert_int_equal(pl_nm_store_list(s, &all, &n), PL_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(all[0].pub, b.pub, 32); /* ordered by first_seen */
    assert_memory_equal(all[1].pub, a.pub, 32);
    assert_int_equal(all[1].first_seen_ms, 2000);
    assert_string_equal(all[1].fingerprint, "ABCD-EFGH");
    assert_false(all[1].confirmed);
    pl_free(all);

    /* touch: confirmed, seen now */
    assert_int_equal(pl_nm_store_touch(s, a.pub, 5000), PL_OK);
    pl_nm_counterparty f;
    assert_int_equal(pl_nm_store_find(s, "Nimbus GUI", &f), PL_OK);
    assert_true(f.confirmed);
    assert_int_equal(f.last_seen_ms, 5000);
    uint8_t none[32] = {7};
    assert_int_equal(pl_nm_store_touch(s, none, 1), PL_ERR_NOT_FOUND);

    /* find: a hex prefix of at least 4 digits (any case), or a name */
    char id[PL_NM_PEER_ID_SIZE];
    pl_nm_peer_id(id, b.pub);
    assert_string_equal(id, "b2b2b2b2b2b2b2b2");
    assert_int_equal(pl_nm_store_find(s, "B2B2", &f), PL_OK);
    assert_memory_equal(f.pub, b.pub, 32);
    assert_int_equal(pl_nm_store_find(s, "a1a1", &f), PL_ERR_EXISTS); /* a and c */
    uint8_t zero[sizeof f];
    memset(zero, 0, sizeof zero);
    assert_memory_equal(&f, zero, sizeof f);
    char full[65];
    for (int i = 0; i < 32; i++)
        snprintf(full + 2 * i, 3, "%02x", c.pub[i]);
    assert_int_equal(pl_nm_store_find(s, full, &f), PL_OK);
    assert_string_equal(f.name, "other");
    assert_int_equal(pl_nm_store_find(s, "b2b", &f), PL_ERR_NOT_FOUND); /* too short */
    assert_int_equal(pl_nm_store_find(s, "nobody", &f), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_nm_store_find(s, "", &f), PL_ERR_NOT_FOUND); /* b's empty name */

    /* remove */
    assert_int_equal(pl_nm_store_remove(s, c.pub), PL_OK);
    assert_int_equal(pl_nm_store_remove(s, c.pub), PL_ERR_NOT_FOUND);
    assert_int_equal(pl_nm_store_find(s, "a1a1", &f), PL_OK);

    /* rows that do not decode are skipped, not fatal */
    sqlite3 *db = pl__store_db(s);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO nm_peer VALUES(x'0102',1,'short','',1,1,0);"
                     "INSERT INTO nm_peer VALUES(zeroblob(32),7,'role','',1,1,0);"
                     "INSERT INTO nm_peer "
                     "VALUES(x'1111111111111111111111111111111111111111111111111111111111111111',"
                     "2,'','',1,1,1);",
                     NULL, NULL, NULL),
        SQLITE_OK);
    assert_int_equal(pl_nm_store_list(s, &all, &n), PL_OK);
    assert_int_equal(n, 3);
    assert_string_equal(all[0].name, "");
    assert_true(all[0].confirmed);
    pl_free(all);
    pl_store_close(s);

    /* survives a reopen */
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    assert_int_equal(pl_nm_store_init(s), PL_OK);
    assert_int_equal(pl_nm_store_find(s, "Nimbus GUI", &f), PL_OK);
    assert_int_equal(f.last_seen_ms, 5000);
    pl_store_close(s);
}

/* SQLite failures come back as named errors with the SQLite code kept. */
static void test_sql_failures(void **state) {
    (void)state;
    pl_store *s;
    assert_int_equal(pl_store_open(&s, ":memory:"), PL_OK);
    pl_nm_counterparty a = cp(1, PL_NM_ROLE_APP, "a", 1), f;
    pl_nm_counterparty *all = NULL;
    size_t n = 0;
    /* no table yet */
    assert_int_equal(pl_nm_store_put(s, &a), PL_ERR_STORE);
    assert_int_equal(pl_last_detail() & 0xff, SQLITE_ERROR);
    assert_int_equal(pl_nm_store_touch(s, a.pub, 1), PL_ERR_STORE);
    assert_int_equal(pl_nm_store_remove(s, a.pub), PL_ERR_STORE);
    assert_int_equal(pl_nm_store_list(s, &all, &n), PL_ERR_STORE);
    assert_null(all);
    assert_int_equal(pl_nm_store_find(s, "a", &f), PL_ERR_STORE);
    /* a write refused while the statement runs (a constraint) */
    assert_int_equal(pl_nm_store_init(s), PL_OK);
    sqlite3 *db = pl__store_db(s);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER no_ins BEFORE INSERT ON nm_peer BEGIN SELECT "
                                  "RAISE(ABORT,'refused'); END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(pl_nm_store_put(s, &a), PL_ERR_STORE);
    assert_int_equal(pl_last_detail() & 0xff, SQLITE_CONSTRAINT);
    /* a database that refuses to change */
    assert_int_equal(sqlite3_exec(db, "DROP TABLE nm_peer; PRAGMA query_only=1;", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(pl_nm_store_init(s), PL_ERR_STORE);
    assert_int_equal(pl_last_detail() & 0xff, SQLITE_READONLY);
    pl_store_close(s);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counterparties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sql_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
