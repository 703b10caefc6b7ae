/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite persistence: see include/pairlink/store.h. */
#include "pairlink/store.h"
#include "store/sqlite.h"
#include "store/store_internal.h"

#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* 2: pending requests keep their sealed message; handled request ids. */
#define SCHEMA_VERSION 2

/* Prepared statements kept for the store's life, looked up by their SQL
 * text (the callers pass string literals): preparing was most of the CPU of
 * a write to an in-memory store. */
#define STMT_CACHE 32

struct pl_store {
    sqlite3 *db;
    struct {
        const char *sql;
        sqlite3_stmt *st;
    } stmts[STMT_CACHE];
    size_t nstmts;
    /* Group commit (pl__store_batch): a transaction is open since the first
     * write after the last commit; `failed` is sticky once a commit failed. */
    bool batching, in_txn;
    pl_err failed;
    void (*on_begin)(void *ud);
    void *begin_ud;
};


static pl_err exec(sqlite3 *db, const char *sql) {
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? PL_OK : pl__sqlite_err(rc);
}

static const char *const schema =
    "CREATE TABLE IF NOT EXISTS kv(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS wc_pairing("
    "  topic TEXT PRIMARY KEY, sym_key BLOB NOT NULL, relay_protocol TEXT NOT NULL,"
    "  expiry INTEGER NOT NULL, active INTEGER NOT NULL, proposer INTEGER NOT NULL,"
    "  methods TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS wc_pending("
    "  topic TEXT NOT NULL, id_kind INTEGER NOT NULL, id_num INTEGER NOT NULL,"
    "  id_str TEXT NOT NULL, method TEXT NOT NULL, deadline_ms INTEGER NOT NULL,"
    "  tag INTEGER NOT NULL DEFAULT 0, ttl INTEGER NOT NULL DEFAULT 0,"
    "  prompt INTEGER NOT NULL DEFAULT 0, message TEXT,"
    "  PRIMARY KEY(topic, id_kind, id_num, id_str));"
    "CREATE TABLE IF NOT EXISTS wc_seen("
    "  topic TEXT NOT NULL, id_kind INTEGER NOT NULL, id_num INTEGER NOT NULL,"
    "  id_str TEXT NOT NULL, until_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(topic, id_kind, id_num, id_str));";

/* From schema 1 (no message columns in wc_pending). */
static const char *const migrate_1_to_2 =
    "ALTER TABLE wc_pending ADD COLUMN tag INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE wc_pending ADD COLUMN ttl INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE wc_pending ADD COLUMN prompt INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE wc_pending ADD COLUMN message TEXT;";

/* The file holds keys: create it 0600 ourselves (SQLite would use the
 * umask) and refuse one that others can read. */
static pl_err check_file(const char *path) {
    if (!strcmp(path, ":memory:") || !*path) return PL_OK;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return pl__fail(PL_ERR_SYS, errno);
    struct stat st;
    int rc = fstat(fd, &st);
    close(fd);
    if (rc != 0) return pl__fail(PL_ERR_SYS, errno);
    if (st.st_mode & 077) return PL_ERR_KEY_FILE;
    return PL_OK;
}

pl_err pl_store_open(pl_store **out, const char *path) {
    PL_REQUIRE(out && path);
    *out = NULL;
    PL_TRY(check_file(path));
    pl_store *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    pl_err err = rc == SQLITE_OK ? PL_OK : pl__sqlite_err(rc);
    pl__sqlite_setup(s->db);
    if (err == PL_OK) sqlite3_busy_timeout(s->db, 5000);
    /* WAL + FULL: a committed transaction survives power loss and kill -9. */
    if (err == PL_OK) err = exec(s->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    int version = 0;
    if (err == PL_OK) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
        if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) version = sqlite3_column_int(st, 0);
        else err = pl__sqlite_err(rc == SQLITE_OK ? sqlite3_errcode(s->db) : rc);
        sqlite3_finalize(st);
    }
    if (err == PL_OK && version > SCHEMA_VERSION) err = PL_ERR_STORE_CORRUPT;
    if (err == PL_OK) err = exec(s->db, "BEGIN IMMEDIATE");
    if (err == PL_OK) {
        err = exec(s->db, schema);
        if (err == PL_OK && version == 1) err = exec(s->db, migrate_1_to_2);
        if (err == PL_OK) err = exec(s->db, "PRAGMA user_version=2");
        pl_err e2 = exec(s->db, err == PL_OK ? "COMMIT" : "ROLLBACK");
        if (err == PL_OK) err = e2;
    }
    if (err != PL_OK) {
        sqlite3_close(s->db);
        free(s);
        return err;
    }
    *out = s;
    return PL_OK;
}

sqlite3 *pl__store_db(pl_store *s) {
    PL_REQUIRE(s);
    return s->db;
}

sqlite3_stmt *pl__store_stmt(pl_store *s, const char *sql, pl_err *err) {
    PL_REQUIRE(s && sql && err);
    *err = PL_OK;
    for (size_t i = 0; i < s->nstmts; i++)
        if (s->stmts[i].sql == sql || !strcmp(s->stmts[i].sql, sql)) return s->stmts[i].st;
    sqlite3_stmt *st = NULL;
    bool keep = s->nstmts < STMT_CACHE;
    int rc = sqlite3_prepare_v3(s->db, sql, -1, keep ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
    if (rc != SQLITE_OK) {
        *err = pl__sqlite_err(rc);
        return NULL;
    }
    /* A full cache (not with the statements of this library) would leak:
     * PL_REQUIRE catches a caller building SQL at run time. */
    PL_REQUIRE(keep);
    s->stmts[s->nstmts].sql = sql;
    s->stmts[s->nstmts].st = st;
    s->nstmts++;
    return st;
}

void pl__store_stmt_done(sqlite3_stmt *st) {
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* BEGIN and COMMIT of the per-turn transaction from the statement cache:
 * sqlite3_exec parsed them again at every loop turn (a sixth of a
 * WalletConnect client's CPU per ping round trip, issue 12). */
static pl_err exec_cached(pl_store *s, const char *sql) {
    pl_err err;
    sqlite3_stmt *st = pl__store_stmt(s, sql, &err);
    if (!st) return err;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? PL_OK : pl__sqlite_err(rc);
}

pl_err pl__store_write_begin(pl_store *s) {
    PL_REQUIRE(s);
    if (s->failed != PL_OK) return s->failed;
    if (!s->batching || s->in_txn) return PL_OK;
    pl_err e = exec_cached(s, "BEGIN IMMEDIATE");
    if (e != PL_OK) return e;
    s->in_txn = true;
    if (s->on_begin) s->on_begin(s->begin_ud);
    return PL_OK;
}

void pl__store_batch(pl_store *s, void (*on_begin)(void *ud), void *ud) {
    PL_REQUIRE(s && !s->in_txn);
    s->batching = true;
    s->on_begin = on_begin;
    s->begin_ud = ud;
}

pl_err pl__store_unbatch(pl_store *s) {
    PL_REQUIRE(s);
    pl_err e = pl__store_commit(s);
    s->batching = false;
    s->on_begin = NULL;
    return e;
}

bool pl__store_in_txn(const pl_store *s) {
    PL_REQUIRE(s);
    return s->in_txn;
}

pl_err pl__store_commit(pl_store *s) {
    PL_REQUIRE(s);
    if (!s->in_txn) return s->failed;
    pl_err e = exec_cached(s, "COMMIT");
    if (e != PL_OK) {
        /* SQLite may already have rolled back (SQLITE_FULL, an I/O error);
         * if not, do it: the writes are lost either way, and so may be
         * whatever depends on them, so nothing more is written. */
        if (!sqlite3_get_autocommit(s->db)) (void)exec(s->db, "ROLLBACK");
        s->failed = e;
    }
    s->in_txn = false;
    return e;
}

void pl_store_close(pl_store *s) {
    if (!s) return;
    if (s->in_txn) (void)pl__store_commit(s);
    for (size_t i = 0; i < s->nstmts; i++) sqlite3_finalize(s->stmts[i].st);
    sqlite3_close(s->db);
    free(s);
}

/* Bind with a callback-free printf-like mini language, step once; the
 * statement is the store's cached one. Inside the batch's transaction when
 * batching. */
static pl_err run(pl_store *s, const char *sql, const char *types, ...) {
    PL_TRY(pl__store_write_begin(s));
    pl_err err;
    sqlite3_stmt *st = pl__store_stmt(s, sql, &err);
    if (!st) return err;
    int rc;
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        switch (types[i]) {
        case 't': sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT); break;
        case 'i': sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t)); break;
        case 'b': {
            const void *p = va_arg(ap, const void *);
            int n = va_arg(ap, int);
            sqlite3_bind_blob(st, i + 1, p, n, SQLITE_TRANSIENT);
            break;
        }
        }
    }
    va_end(ap);
    rc = sqlite3_step(st);
    pl__store_stmt_done(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? PL_OK : pl__sqlite_err(rc);
}

static pl_err h_save_pairing(void *ctx, const pl_wc_pairing *p) {
    return run(ctx,
               "INSERT OR REPLACE INTO wc_pairing(topic,sym_key,relay_protocol,expiry,active,proposer,methods)"
               " VALUES(?,?,?,?,?,?,?)",
               "tbtiiit", p->topic, p->sym_key, (int)sizeof p->sym_key, p->relay_protocol,
               (int64_t)p->expiry, (int64_t)p->active, (int64_t)p->proposer, p->methods);
}

static pl_err h_remove_pairing(void *ctx, const char *topic) {
    pl_err e = run(ctx, "DELETE FROM wc_pending WHERE topic=?", "t", topic);
    if (e == PL_OK) e = run(ctx, "DELETE FROM wc_seen WHERE topic=?", "t", topic);
    if (e != PL_OK) return e;
    return run(ctx, "DELETE FROM wc_pairing WHERE topic=?", "t", topic);
}

static pl_err h_save_pending(void *ctx, const pl_wc_pending *r) {
    /* The envelope is kept as the base64 text the relay carries (the
     * column's format since schema 2). */
    char *b64 = NULL;
    if (r->message) {
        size_t cap = pl_base64_encoded_size(r->message_len, PL_B64_STD);
        b64 = malloc(cap);
        if (!b64) return PL_ERR_NOMEM;
        pl_err e = pl_base64_encode_public(b64, cap, r->message, r->message_len, PL_B64_STD);
        if (e != PL_OK) {
            free(b64);
            return e;
        }
    }
    pl_err e = run(ctx,
                   "INSERT OR REPLACE INTO wc_pending(topic,id_kind,id_num,id_str,method,deadline_ms,"
                   "tag,ttl,prompt,message) VALUES(?,?,?,?,?,?,?,?,?,?)",
                   "tiittiiiit", r->topic, (int64_t)r->id.kind,
                   r->id.kind == PL_RPC_ID_NUM ? r->id.num : 0,
                   r->id.kind == PL_RPC_ID_STR ? r->id.str : "", r->method, r->deadline_ms,
                   (int64_t)r->tag, (int64_t)r->ttl, (int64_t)r->prompt, b64);
    free(b64);
    return e;
}

static pl_err h_save_seen(void *ctx, const char *topic, const pl_rpc_id *id, int64_t until_ms) {
    return run(ctx,
               "INSERT OR REPLACE INTO wc_seen(topic,id_kind,id_num,id_str,until_ms) VALUES(?,?,?,?,?)",
               "tiiti", topic, (int64_t)id->kind, id->kind == PL_RPC_ID_NUM ? id->num : 0,
               id->kind == PL_RPC_ID_STR ? id->str : "", until_ms);
}

static pl_err h_remove_pending(void *ctx, const char *topic, const pl_rpc_id *id) {
    return run(ctx, "DELETE FROM wc_pending WHERE topic=? AND id_kind=? AND id_num=? AND id_str=?",
               "tiit", topic, (int64_t)id->kind, id->kind == PL_RPC_ID_NUM ? id->num : 0,
               id->kind == PL_RPC_ID_STR ? id->str : "");
}

pl_wc_store pl_store_wc_hooks(pl_store *s) {
    PL_REQUIRE(s);
    pl_wc_store h = {s, h_save_pairing, h_remove_pairing, h_save_pending, h_remove_pending,
                     h_save_seen};
    return h;
}

static void copy_text(char *dst, size_t cap, const unsigned char *src) {
    snprintf(dst, cap, "%s", src ? (const char *)src : "");
}

/* Handled request ids still redeliverable: back into the engine; the rest
 * are pruned. */
static pl_err load_seen(pl_store *s, pl_wc_engine *e, int64_t now_ms) {
    PL_TRY(run(s, "DELETE FROM wc_seen WHERE until_ms <= ?", "i", now_ms));
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT topic,id_kind,id_num,id_str FROM wc_seen ORDER BY until_ms", -1,
                                &st, NULL);
    if (rc != SQLITE_OK) return pl__sqlite_err(rc);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char topic[PL_TOPIC_HEX_SIZE];
        pl_rpc_id id = {0};
        copy_text(topic, sizeof topic, sqlite3_column_text(st, 0));
        id.kind = (pl_rpc_id_kind)sqlite3_column_int(st, 1);
        id.num = sqlite3_column_int64(st, 2);
        copy_text(id.str, sizeof id.str, sqlite3_column_text(st, 3));
        if (id.kind == PL_RPC_ID_NUM || id.kind == PL_RPC_ID_STR) pl_wc_restore_seen(e, topic, &id);
    }
    pl_err err = rc == SQLITE_DONE ? PL_OK : pl__sqlite_err(rc);
    sqlite3_finalize(st);
    return err;
}

pl_err pl_store_wc_load(pl_store *s, pl_wc_engine *e, int64_t now_ms, size_t *n_pairings) {
    PL_REQUIRE(s && e);
    if (n_pairings) *n_pairings = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT topic,sym_key,relay_protocol,expiry,active,proposer,methods FROM wc_pairing",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) return pl__sqlite_err(rc);
    /* Collect first: restoring may delete expired rows, which must not
     * happen under an open SELECT. */
    size_t cap = 16, n = 0;
    pl_wc_pairing *list = malloc(cap * sizeof *list);
    pl_err err = list ? PL_OK : PL_ERR_NOMEM;
    while (err == PL_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) != PL_SYMKEY_BYTES) continue; /* damaged row: skip */
        if (n == cap) {
            pl_wc_pairing *grown = realloc(list, 2 * cap * sizeof *list);
            if (!grown) {
                err = PL_ERR_NOMEM;
                break;
            }
            list = grown, cap *= 2;
        }
        pl_wc_pairing *p = &list[n++];
        memset(p, 0, sizeof *p);
        copy_text(p->topic, sizeof p->topic, sqlite3_column_text(st, 0));
        memcpy(p->sym_key, sqlite3_column_blob(st, 1), PL_SYMKEY_BYTES);
        copy_text(p->relay_protocol, sizeof p->relay_protocol, sqlite3_column_text(st, 2));
        p->expiry = sqlite3_column_int64(st, 3);
        p->active = sqlite3_column_int(st, 4) != 0;
        p->proposer = sqlite3_column_int(st, 5) != 0;
        copy_text(p->methods, sizeof p->methods, sqlite3_column_text(st, 6));
    }
    if (err == PL_OK && rc != SQLITE_DONE) err = pl__sqlite_err(rc);
    sqlite3_finalize(st);
    size_t restored = 0;
    for (size_t i = 0; i < n; i++) {
        if (err == PL_OK) {
            pl_err r = pl_wc_restore_pairing(e, &list[i], now_ms);
            if (r == PL_OK) restored++;
            else if (r != PL_ERR_PAIRING_EXPIRED && r != PL_ERR_PAIRING_EXISTS) err = r;
        }
        pl_wipe(&list[i], sizeof list[i]);
    }
    free(list);
    if (err != PL_OK) return err;

    rc = sqlite3_prepare_v2(s->db,
                            "SELECT topic,id_kind,id_num,id_str,method,deadline_ms,tag,ttl,prompt,message"
                            " FROM wc_pending",
                            -1, &st, NULL);
    if (rc != SQLITE_OK) return pl__sqlite_err(rc);
    pl_wc_pending *pend = NULL;
    size_t np = 0, pcap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (np == pcap) {
            size_t nc = pcap ? 2 * pcap : 16;
            pl_wc_pending *g = realloc(pend, nc * sizeof *g);
            if (!g) {
                err = PL_ERR_NOMEM;
                break;
            }
            pend = g, pcap = nc;
        }
        pl_wc_pending *r = &pend[np++];
        memset(r, 0, sizeof *r);
        copy_text(r->topic, sizeof r->topic, sqlite3_column_text(st, 0));
        r->id.kind = (pl_rpc_id_kind)sqlite3_column_int(st, 1);
        r->id.num = sqlite3_column_int64(st, 2);
        copy_text(r->id.str, sizeof r->id.str, sqlite3_column_text(st, 3));
        copy_text(r->method, sizeof r->method, sqlite3_column_text(st, 4));
        r->deadline_ms = sqlite3_column_int64(st, 5);
        r->tag = (uint32_t)sqlite3_column_int64(st, 6);
        r->ttl = (uint32_t)sqlite3_column_int64(st, 7);
        r->prompt = sqlite3_column_int(st, 8) != 0;
        const unsigned char *m = sqlite3_column_text(st, 9);
        if (m) {
            size_t mlen = (size_t)sqlite3_column_bytes(st, 9);
            size_t bcap = mlen / 4 * 3 + 3, blen = 0;
            uint8_t *buf = malloc(bcap);
            if (!buf) {
                err = PL_ERR_NOMEM;
            } else if (pl_base64_decode_public(buf, bcap, &blen, (const char *)m, mlen,
                                               PL_B64_STD) != PL_OK) {
                free(buf); /* a damaged envelope: restored without a re-publish */
            } else {
                r->message = buf;
                r->message_len = blen;
            }
        }
    }
    if (err == PL_OK && rc != SQLITE_DONE) err = pl__sqlite_err(rc);
    sqlite3_finalize(st);
    for (size_t i = 0; i < np; i++) {
        if (err == PL_OK) {
            pl_err r = pl_wc_restore_pending(e, &pend[i]);
            if (r != PL_OK && r != PL_ERR_NO_MATCHING_KEY) err = r;
        }
        free((uint8_t *)pend[i].message);
    }
    free(pend);
    if (err == PL_OK) err = load_seen(s, e, now_ms);
    if (err == PL_OK && n_pairings) *n_pairings = restored;
    return err;
}

pl_err pl_store_put(pl_store *s, const char *key, const uint8_t *val, size_t len) {
    PL_REQUIRE(s && key && (val || len == 0));
    if (len > (1u << 20)) return PL_ERR_TOO_LARGE;
    return run(s, "INSERT OR REPLACE INTO kv(key,value) VALUES(?,?)", "tb", key, val, (int)len);
}

pl_err pl_store_get(pl_store *s, const char *key, uint8_t **out, size_t *len) {
    PL_REQUIRE(s && key && out && len);
    *out = NULL;
    *len = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM kv WHERE key=?", -1, &st, NULL);
    if (rc != SQLITE_OK) return pl__sqlite_err(rc);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
    rc = sqlite3_step(st);
    pl_err err = PL_OK;
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        uint8_t *b = malloc((size_t)n + 1);
        if (!b) err = PL_ERR_NOMEM;
        else {
            if (n) memcpy(b, sqlite3_column_blob(st, 0), (size_t)n);
            *out = b;
            *len = (size_t)n;
        }
    } else if (rc == SQLITE_DONE) {
        err = PL_ERR_NOT_FOUND;
    } else {
        err = pl__sqlite_err(rc);
    }
    sqlite3_finalize(st);
    return err;
}

pl_err pl_store_secret(pl_store *s, const char *key, uint8_t *out, size_t len) {
    PL_REQUIRE(s && key && out && len > 0);
    uint8_t *v = NULL;
    size_t vlen = 0;
    pl_err e = pl_store_get(s, key, &v, &vlen);
    if (e == PL_OK) {
        if (vlen != len) e = PL_ERR_STORE_CORRUPT;
        else memcpy(out, v, len);
        pl_free_secret(v, vlen);
    } else if (e == PL_ERR_NOT_FOUND) {
        pl_random(out, len);
        e = pl_store_put(s, key, out, len);
    }
    if (e != PL_OK) pl_wipe(out, len);
    return e;
}
