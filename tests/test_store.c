/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite persistence: round trips through the engine hooks, file mode,
 * corrupt files, and a child killed with SIGKILL mid-write. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pairlink/driver.h"
#include "pairlink/hash.h"
#include "pairlink/loopback.h"
#include "pairlink/store.h"
#include "store/sqlite.h"
#include "store/store_internal.h"
#include "support/support.h"

#define T0 1700000000000LL

static char dir[256];
static void net_close(void);

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pl-store-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    net_close();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* The engine's transport: loopback endpoints on one hub and a virtual
 * driver; the hub's tap sees what is published. */
static pl_driver *D;
static pl_loopback_hub *H;
static pl_transport *eps[256];
static size_t neps;
static int pubs;
static uint8_t last_pub[4096];
static size_t last_pub_len;

static void tap(void *ud, const char *ep, const char *t, const uint8_t *data, size_t len,
                const pl_publish_opts *o) {
    (void)ud, (void)ep, (void)t, (void)o;
    pubs++;
    assert_true(len <= sizeof last_pub);
    memcpy(last_pub, data, len);
    last_pub_len = len;
}

static void net_open(void) {
    if (D) return;
    assert_int_equal(pl_driver_new_virtual(&D, T0), PL_OK);
    assert_int_equal(pl_loopback_hub_new(&H, D, NULL), PL_OK);
    pl_loopback_hub_set_tap(H, tap, NULL);
}

static void net_close(void) {
    for (size_t i = 0; i < neps; i++) pl_transport_close(eps[i], 0, NULL, NULL);
    neps = 0;
    if (!D) return;
    pl_driver_run(D);
    pl_loopback_hub_free(H);
    pl_driver_free(D);
    H = NULL;
    D = NULL;
}

static pl_wc_engine *engine_on(pl_store *s) {
    net_open();
    assert_true(neps < 256);
    assert_int_equal(pl_loopback_new(&eps[neps], H, "engine", NULL), PL_OK);
    pl_wc_store hooks = pl_store_wc_hooks(s);
    pl_wc_engine *e = NULL;
    assert_int_equal(pl_wc_engine_new(&e, NULL, eps[neps++], &hooks), PL_OK);
    const pl_wc_method m = {"test_method", 1, 300, false, 2, 300};
    assert_int_equal(pl_wc_register(e, &m, NULL, NULL, NULL), PL_OK);
    return e;
}

/* Subscriptions of the engine made last. */
static size_t subs(void) { return pl_loopback_subscriptions(eps[neps - 1]); }

static void test_pairings_survive_reopen(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/a.db", dir);
    pl_store *s = NULL;
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    pl_wc_engine *e = engine_on(s);
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    const char *methods[] = {"test_method", "wc_sessionPropose"};
    assert_int_equal(pl_wc_create(e, methods, 2, T0, &uri, topic), PL_OK);
    pl_rpc_id id;
    assert_int_equal(pl_wc_request(e, topic, "test_method", NULL, T0, &id), PL_OK);
    uint8_t sent[4096];
    size_t sent_len = last_pub_len;
    memcpy(sent, last_pub, sent_len);
    pl_wc_pairing before;
    assert_int_equal(pl_wc_pairing_get(e, topic, &before), PL_OK);
    pl_wc_engine_free(e);
    pl_store_close(s);

    assert_int_equal(pl_store_open(&s, path), PL_OK);
    e = engine_on(s);
    size_t n = 0;
    pubs = 0;
    assert_int_equal(pl_store_wc_load(s, e, T0 + 1000, &n), PL_OK);
    assert_int_equal(n, 1);
    assert_int_equal(subs(), 1);
    /* the pending request's sealed bytes were published again as they were */
    assert_int_equal(pubs, 1);
    assert_int_equal(last_pub_len, sent_len);
    assert_memory_equal(last_pub, sent, sent_len);
    pl_wc_pairing after;
    assert_int_equal(pl_wc_pairing_get(e, topic, &after), PL_OK);
    assert_memory_equal(before.sym_key, after.sym_key, 32);
    assert_int_equal(before.expiry, after.expiry);
    assert_string_equal(after.methods, "test_method,wc_sessionPropose");
    assert_false(after.active);
    assert_true(after.proposer);
    /* the pending request came back too: its deadline is the engine's next */
    assert_int_equal(pl_wc_engine_next_deadline(e), T0 + 300 * 1000);
    pl_wc_engine_free(e);
    pl_store_close(s);

    /* loading after expiry drops the pairing from the file */
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    e = engine_on(s);
    assert_int_equal(pl_store_wc_load(s, e, T0 + 301 * 1000, &n), PL_OK);
    assert_int_equal(n, 0);
    pl_wc_engine_free(e);
    e = engine_on(s);
    assert_int_equal(pl_store_wc_load(s, e, T0, &n), PL_OK);
    assert_int_equal(n, 0);
    pl_wc_engine_free(e);
    pl_store_close(s);
    pl_free(uri);
}

static void test_kv_and_errors(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/kv.db", dir);
    pl_store *s = NULL;
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    uint8_t *v = NULL;
    size_t len = 0;
    assert_int_equal(pl_store_get(s, "missing", &v, &len), PL_ERR_NOT_FOUND);
    assert_null(v);
    assert_int_equal(pl_store_put(s, "k", (const uint8_t *)"abc", 3), PL_OK);
    assert_int_equal(pl_store_get(s, "k", &v, &len), PL_OK);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "abc", 3);
    pl_free_secret(v, len);

    /* a secret is made once, then the same one comes back */
    uint8_t a[32], b[32], zero[32] = {0};
    assert_int_equal(pl_store_secret(s, "seed", a, sizeof a), PL_OK);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_int_equal(pl_store_secret(s, "seed", b, sizeof b), PL_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(pl_store_secret(s, "k", b, sizeof b), PL_ERR_STORE_CORRUPT); /* 3 bytes */
    assert_memory_equal(b, zero, sizeof b);
    pl_store_close(s);

    /* a world-readable store is refused */
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(pl_store_open(&s, path), PL_ERR_KEY_FILE);
    assert_null(s);

    /* a file that is not a database */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/bad.db", dir);
    int fd = open(bad, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    char junk[4096];
    memset(junk, 'x', sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    assert_int_equal(pl_store_open(&s, bad), PL_ERR_STORE_CORRUPT);
    assert_null(s);
}

/* What the engine persists besides pairings: handled request ids (both id
 * kinds) come back at start-up, so that a redelivered request is not
 * handled twice; damaged rows are skipped or restored without what is
 * damaged. */
static int handled;
static void count_request(void *ud, pl_wc_engine *e, const char *topic, const pl_rpc_msg *req) {
    (void)ud, (void)e, (void)topic, (void)req;
    handled++;
}

static void deliver_request(pl_wc_engine *e, const pl_wc_pairing *p, const pl_rpc_id *id) {
    char *json = NULL;
    uint8_t *env = NULL;
    size_t env_len = 0;
    assert_int_equal(pl_rpc_encode_request(&json, id, "test_method", "{}"), PL_OK);
    pl_envelope_params prm = {.type = 0};
    assert_int_equal(pl_envelope_seal_raw(&env, &env_len, p->sym_key, (const uint8_t *)json,
                                          strlen(json), &prm),
                     PL_OK);
    assert_int_equal(pl_wc_engine_on_message(e, p->topic, env, env_len, NULL, T0 + 1000), PL_OK);
    pl_free(json);
    pl_free(env);
}

static void test_seen_ids_and_damaged_rows(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/seen.db", dir);
    pl_store *s = NULL;
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    pl_wc_engine *e = engine_on(s);
    char *uri = NULL, topic[PL_TOPIC_HEX_SIZE];
    assert_int_equal(pl_wc_create(e, NULL, 0, T0, &uri, topic), PL_OK);
    pl_free(uri);
    pl_wc_pairing p;
    assert_int_equal(pl_wc_pairing_get(e, topic, &p), PL_OK);
    pl_wc_engine_free(e);
    pl_wc_store h = pl_store_wc_hooks(s);
    pl_rpc_id num = pl_rpc_id_num(42), str = {.kind = PL_RPC_ID_STR};
    snprintf(str.str, sizeof str.str, "req-7");
    assert_int_equal(h.save_seen(h.ctx, topic, &num, T0 + 60000), PL_OK);
    assert_int_equal(h.save_seen(h.ctx, topic, &str, T0 + 60000), PL_OK);
    pl_rpc_id old = pl_rpc_id_num(43);
    assert_int_equal(h.save_seen(h.ctx, topic, &old, T0 - 1), PL_OK); /* expired: pruned */
    sqlite3 *db = pl__store_db(s);
    char sql[512];
    /* a pairing whose key is not 32 bytes; a pending request whose sealed
     * message is not base64; a seen id of no kind */
    snprintf(sql, sizeof sql,
             "INSERT INTO wc_pairing VALUES('%.64s',x'00',"
             "'irn',%lld,1,0,'');"
             "INSERT INTO wc_pending VALUES('%s',1,5,'','test_method',%lld,0,300,0,'%%%%%%');"
             "INSERT INTO wc_seen VALUES('%s',0,0,'',%lld);",
             "0000000000000000000000000000000000000000000000000000000000000000",
             (long long)(T0 / 1000 + 999), topic, (long long)(T0 + 300000), topic,
             (long long)(T0 + 60000));
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    pl_store_close(s);

    assert_int_equal(pl_store_open(&s, path), PL_OK);
    e = engine_on(s);
    const pl_wc_method m = {"test_method", 1, 300, false, 2, 300};
    pl_wc_engine_free(e);
    net_open();
    assert_int_equal(pl_loopback_new(&eps[neps], H, "engine", NULL), PL_OK);
    pl_wc_store hooks = pl_store_wc_hooks(s);
    assert_int_equal(pl_wc_engine_new(&e, NULL, eps[neps++], &hooks), PL_OK);
    assert_int_equal(pl_wc_register(e, &m, count_request, NULL, NULL), PL_OK);
    size_t n = 0;
    pubs = 0;
    assert_int_equal(pl_store_wc_load(s, e, T0, &n), PL_OK);
    assert_int_equal(n, 1);       /* the damaged pairing skipped */
    assert_int_equal(pubs, 0);    /* the damaged message not published again */
    handled = 0;
    deliver_request(e, &p, &num); /* handled before the restart */
    deliver_request(e, &p, &str);
    assert_int_equal(handled, 0);
    deliver_request(e, &p, &old); /* its memory expired */
    assert_int_equal(handled, 1);
    int rows = -1;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(pl__store_db(s), "SELECT count(*) FROM wc_seen", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    rows = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(rows, 4); /* 42, "req-7", the kindless one, and 43 handled again */
    pl_wipe(&p, sizeof p);
    pl_wc_engine_free(e);
    pl_store_close(s);
}

/* A store made by schema 1 (no sealed message with pending requests) is
 * migrated in place; a newer schema is refused; SQLite refusing a write is
 * a named error for the engine. */
static void test_schema_and_write_failures(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/v1.db", dir);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE wc_pending(topic TEXT NOT NULL, id_kind INTEGER NOT NULL,"
                                  " id_num INTEGER NOT NULL, id_str TEXT NOT NULL, method TEXT NOT NULL,"
                                  " deadline_ms INTEGER NOT NULL,"
                                  " PRIMARY KEY(topic, id_kind, id_num, id_str));"
                                  "PRAGMA user_version=1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(chmod(path, 0600), 0);
    pl_store *s = NULL;
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    pl_wc_store h = pl_store_wc_hooks(s);
    uint8_t msg[3] = {1, 2, 3};
    pl_wc_pending r = {.id = pl_rpc_id_num(1), .deadline_ms = T0, .message = msg, .message_len = 3};
    snprintf(r.topic, sizeof r.topic, "%064d", 0);
    snprintf(r.method, sizeof r.method, "m");
    assert_int_equal(h.save_pending(h.ctx, &r), PL_OK);
    assert_int_equal(h.remove_pending(h.ctx, r.topic, &r.id), PL_OK);
    assert_int_equal(h.save_pending(h.ctx, &r), PL_OK); /* kept: the delete below meets it */
    /* writes the database refuses */
    assert_int_equal(sqlite3_exec(pl__store_db(s),
                                  "CREATE TRIGGER no1 BEFORE INSERT ON wc_pairing BEGIN SELECT RAISE(ABORT,'x'); END;"
                                  "CREATE TRIGGER no2 BEFORE INSERT ON wc_pending BEGIN SELECT RAISE(ABORT,'x'); END;"
                                  "CREATE TRIGGER no3 BEFORE DELETE ON wc_pending BEGIN SELECT RAISE(ABORT,'x'); END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    pl_wc_pairing p;
    memset(&p, 0, sizeof p);
    snprintf(p.topic, sizeof p.topic, "%064d", 1);
    assert_int_equal(h.save_pairing(h.ctx, &p), PL_ERR_STORE);
    assert_int_equal(pl_last_detail() & 0xff, SQLITE_CONSTRAINT);
    assert_int_equal(h.save_pending(h.ctx, &r), PL_ERR_STORE);
    assert_int_equal(h.remove_pairing(h.ctx, r.topic), PL_ERR_STORE);
    /* the engine's call fails with the store's error and changes nothing */
    pl_wc_engine *e = engine_on(s);
    char *uri = NULL;
    assert_int_equal(pl_wc_create(e, NULL, 0, T0, &uri, NULL), PL_ERR_STORE);
    assert_null(uri);
    assert_int_equal(pl_wc_pairings(e, NULL, 0), 0);
    pl_wc_engine_free(e);
    /* a value too large for the small table */
    static uint8_t big[(1u << 20) + 1];
    assert_int_equal(pl_store_put(s, "big", big, sizeof big), PL_ERR_TOO_LARGE);
    pl_store_close(s);

    /* written by a newer version */
    snprintf(path, sizeof path, "%s/v99.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=99;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(pl_store_open(&s, path), PL_ERR_STORE_CORRUPT);
    assert_null(s);
    /* a directory that does not exist */
    assert_int_equal(pl_store_open(&s, "/nonexistent-dir/x.db"), PL_ERR_SYS);
}

/* A child writes pairings as fast as it can and is killed with SIGKILL at
 * a random moment after it told us (SIGUSR1) that it had durably written
 * six; the parent must find a store that opens, holds at least those six,
 * and whose every row is whole. Repeated a few times at different moments. */
static void test_kill9_mid_write(void **state) {
    (void)state;
    uint64_t seed = pl_test_seed();
    sigset_t usr1, old;
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    /* Blocked before the fork: the signal waits for sigtimedwait, never lost. */
    assert_int_equal(sigprocmask(SIG_BLOCK, &usr1, &old), 0);
    for (int round = 0; round < 4; round++) {
        char path[300];
        snprintf(path, sizeof path, "%s/k%d.db", dir, round);
        pid_t parent = getpid();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            pl_store *s = NULL;
            if (pl_store_open(&s, path) != PL_OK) _exit(2);
            pl_wc_engine *e = engine_on(s);
            for (int i = 0; i < 100000; i++) {
                char *uri = NULL;
                if (pl_wc_create(e, NULL, 0, T0, &uri, NULL) != PL_OK) _exit(3);
                pl_free(uri);
                if (i == 5) kill(parent, SIGUSR1); /* six pairings are durable */
                if (i % 1000 == 999) { /* stay below the engine's limit */
                    pl_wc_engine_free(e);
                    e = engine_on(s);
                }
            }
            _exit(0);
        }
        struct timespec limit = {10, 0};
        siginfo_t si;
        int sig = sigtimedwait(&usr1, &si, &limit);
        if (sig != SIGUSR1) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("round %d: the writer never reported six pairings", round);
        }
        assert_int_equal(si.si_pid, pid);
        usleep((useconds_t)(pl_test_rand(&seed) % 200000));
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        /* it died of our signal, not of its own failure */
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGKILL);

        pl_store *s = NULL;
        assert_int_equal(pl_store_open(&s, path), PL_OK);
        pl_wc_engine *e = engine_on(s);
        size_t n = 0;
        assert_int_equal(pl_store_wc_load(s, e, T0, &n), PL_OK);
        assert_true(n >= 6);
        /* every restored pairing is whole: its topic is sha256 of its key */
        pl_wc_pairing *all = calloc(n, sizeof *all);
        assert_non_null(all);
        size_t total = pl_wc_pairings(e, all, n);
        assert_int_equal(total, n);
        for (size_t i = 0; i < n; i++) {
            uint8_t h[32];
            char hex[65];
            pl_sha256(h, all[i].sym_key, 32);
            for (int k = 0; k < 32; k++) snprintf(hex + 2 * k, 3, "%02x", h[k]);
            assert_string_equal(hex, all[i].topic);
        }
        pl_wipe(all, n * sizeof *all);
        free(all);
        fprintf(stderr, "kill -9 round %d: %zu whole pairings recovered\n", round, n);
        pl_wc_engine_free(e);
        pl_store_close(s);
    }
    assert_int_equal(sigprocmask(SIG_SETMASK, &old, NULL), 0);
}

/* One mapper for every store, extended codes included; the code stays
 * readable as the error's detail. */
static void test_sqlite_error_mapper(void **state) {
    (void)state;
    static const struct {
        int rc;
        pl_err want;
    } cases[] = {
        {SQLITE_NOTADB, PL_ERR_STORE_CORRUPT},     {SQLITE_CORRUPT, PL_ERR_STORE_CORRUPT},
        {SQLITE_CORRUPT_INDEX, PL_ERR_STORE_CORRUPT}, {SQLITE_IOERR_CORRUPTFS, PL_ERR_STORE_CORRUPT},
        {SQLITE_NOMEM, PL_ERR_NOMEM},              {SQLITE_IOERR_NOMEM, PL_ERR_NOMEM},
        {SQLITE_BUSY, PL_ERR_STORE},               {SQLITE_BUSY_SNAPSHOT, PL_ERR_STORE},
        {SQLITE_IOERR_FSYNC, PL_ERR_STORE},        {SQLITE_CONSTRAINT_UNIQUE, PL_ERR_STORE},
        {SQLITE_READONLY_DBMOVED, PL_ERR_STORE},   {SQLITE_FULL, PL_ERR_STORE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(pl__sqlite_err(cases[i].rc), cases[i].want);
        assert_int_equal(pl_last_detail(), cases[i].rc);
    }
}

static int commits;
static int count_commit(void *ud) {
    (void)ud;
    commits++;
    return 0;
}

static int begins;
static void on_begin(void *ud) {
    (void)ud;
    begins++;
}

static int rows_seen_by_other(const char *path) {
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM kv", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* Group commit (store_internal.h): after pl__store_batch the writes until
 * pl__store_commit are one transaction, opened by the first of them (which
 * calls on_begin once), invisible to other connections until the commit;
 * unbatched, each write is its own; close commits what is open. */
static void test_group_commit(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/batch.db", dir);
    pl_store *s;
    assert_int_equal(pl_store_open(&s, path), PL_OK);
    sqlite3_commit_hook(pl__store_db(s), count_commit, NULL);
    commits = begins = 0;
    pl__store_batch(s, on_begin, NULL);
    assert_false(pl__store_in_txn(s));
    assert_int_equal(pl__store_commit(s), PL_OK); /* nothing open: nothing done */
    assert_int_equal(commits, 0);
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof key, "k%d", i);
        assert_int_equal(pl_store_put(s, key, (const uint8_t *)"v", 1), PL_OK);
    }
    assert_true(pl__store_in_txn(s));
    assert_int_equal(begins, 1);
    assert_int_equal(commits, 0);
    assert_int_equal(rows_seen_by_other(path), 0);
    /* reads on the store's own connection see its writes */
    uint8_t *v = NULL;
    size_t vl = 0;
    assert_int_equal(pl_store_get(s, "k7", &v, &vl), PL_OK);
    pl_free_secret(v, vl);
    assert_int_equal(pl__store_commit(s), PL_OK);
    assert_false(pl__store_in_txn(s));
    assert_int_equal(commits, 1);
    assert_int_equal(rows_seen_by_other(path), 20);
    /* the next write opens the next transaction */
    assert_int_equal(pl_store_put(s, "x", (const uint8_t *)"v", 1), PL_OK);
    assert_int_equal(begins, 2);
    /* unbatched: what is open is committed, then one transaction per write */
    assert_int_equal(pl__store_unbatch(s), PL_OK);
    assert_int_equal(commits, 2);
    assert_int_equal(pl_store_put(s, "y", (const uint8_t *)"v", 1), PL_OK);
    assert_int_equal(pl_store_put(s, "z", (const uint8_t *)"v", 1), PL_OK);
    assert_int_equal(commits, 4);
    assert_int_equal(begins, 2);
    assert_int_equal(rows_seen_by_other(path), 23);
    /* batched again, closed with a transaction open: committed */
    pl__store_batch(s, on_begin, NULL);
    assert_int_equal(pl_store_put(s, "w", (const uint8_t *)"v", 1), PL_OK);
    pl_store_close(s);
    assert_int_equal(rows_seen_by_other(path), 24);
}

int main(void) {
    if (pl_init() != PL_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pairings_survive_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seen_ids_and_damaged_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_and_write_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kill9_mid_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
        cmocka_unit_test(test_sqlite_error_mapper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
