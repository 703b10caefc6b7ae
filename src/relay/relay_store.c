/* SPDX-License-Identifier: Apache-2.0 */
/* SQLite mailbox for the relay: see relay_store.h. */
#include "relay/relay_store.h"

#include "core/internal.h"
#include "store/sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STORE_SCHEMA_VERSION 1

struct pl__relay_store {
    sqlite3 *db;
    sqlite3_stmt *put, *del, *prune, *load, *count, *begin, *commit, *rollback;
    bool in_tx;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS relay_messages("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " topic TEXT NOT NULL,"
    " id TEXT NOT NULL,"
    " message TEXT NOT NULL,"
    " attestation TEXT,"
    " published_at INTEGER NOT NULL,"
    " expires_at INTEGER NOT NULL,"
    " tag INTEGER NOT NULL,"
    " publisher TEXT NOT NULL DEFAULT '',"
    " UNIQUE(topic, id));"
    "CREATE INDEX IF NOT EXISTS relay_messages_expiry ON relay_messages(expires_at);";

static int prepare(sqlite3 *db, sqlite3_stmt **st, const char *sql) {
    return sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
}

void pl__relay_store_close(pl__relay_store *s) {
    if (!s) return;
    if (s->in_tx) pl__relay_store_rollback(s);
    sqlite3_stmt *all[] = {s->put,   s->del,   s->prune,  s->load,
                           s->count, s->begin, s->commit, s->rollback};
    for (size_t i = 0; i < PL_ARRAY_LEN(all); i++) sqlite3_finalize(all[i]);
    sqlite3_close(s->db);
    free(s);
}

/* The mailbox names who published what (did:keys) and holds every
 * envelope: owner-only, like the client stores. SQLite would create the
 * file with the umask's mode, and gives the -wal and -shm files the mode
 * of the database, so the database is created (or narrowed) to 0600 first
 * and leftovers of an older, wider file are narrowed too. A path that
 * cannot be opened here is left to SQLite, whose error is the one
 * reported. */
static pl_err restrict_mode(const char *path) {
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return PL_OK;
    struct stat st;
    int rc = fstat(fd, &st);
    if (rc == 0 && (st.st_mode & 077)) rc = fchmod(fd, st.st_mode & 0700);
    int err = errno;
    close(fd);
    if (rc != 0) return pl__fail(PL_ERR_SYS, err);
    static const char *const sides[] = {"-wal", "-shm"};
    for (size_t i = 0; i < PL_ARRAY_LEN(sides); i++) {
        char side[4096];
        if ((size_t)snprintf(side, sizeof side, "%s%s", path, sides[i]) >= sizeof side) continue;
        if (stat(side, &st) == 0 && (st.st_mode & 077) && chmod(side, st.st_mode & 0700) != 0)
            return pl__fail(PL_ERR_SYS, errno);
    }
    return PL_OK;
}

pl_err pl__relay_store_open(pl__relay_store **out, const char *path) {
    PL_REQUIRE(out);
    *out = NULL;
    bool mem = !path || !strcmp(path, ":memory:");
    if (!mem) PL_TRY(restrict_mode(path));
    pl__relay_store *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    int rc = sqlite3_open_v2(mem ? ":memory:" : path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) goto fail;
    pl__sqlite_setup(s->db);
    sqlite3_busy_timeout(s->db, 5000);
    /* WAL + FULL: a commit returns only after the WAL is on disk, so an
     * acknowledged publish survives kill -9 and a power cut. */
    if (!mem) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_step(st);
        bool wal = rc == SQLITE_ROW && sqlite3_column_text(st, 0) &&
                   !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        if (rc != SQLITE_ROW) goto fail;
        if (!wal) {
            rc = SQLITE_CANTOPEN;
            goto fail;
        }
        rc = sqlite3_exec(s->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
        if (rc != SQLITE_OK) goto fail;
    }
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    int version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) goto fail;
    if (version != 0 && version != STORE_SCHEMA_VERSION) {
        pl__relay_store_close(s);
        return pl__fail(PL_ERR_STORE_CORRUPT, version);
    }
    rc = sqlite3_exec(s->db, schema, NULL, NULL, NULL);
    if (rc != SQLITE_OK) goto fail;
    if (version == 0) {
        rc = sqlite3_exec(s->db, "PRAGMA user_version=1", NULL, NULL, NULL);
        if (rc != SQLITE_OK) goto fail;
    }
    if ((rc = prepare(s->db, &s->put,
                      "INSERT OR IGNORE INTO relay_messages(topic,id,message,attestation,"
                      "published_at,expires_at,tag,publisher) VALUES(?,?,?,?,?,?,?,?)")) ||
        (rc = prepare(s->db, &s->del, "DELETE FROM relay_messages WHERE topic=? AND id=?")) ||
        (rc = prepare(s->db, &s->prune, "DELETE FROM relay_messages WHERE expires_at<=?")) ||
        (rc = prepare(s->db, &s->load,
                      "SELECT topic,id,message,attestation,published_at,expires_at,tag,publisher"
                      " FROM relay_messages WHERE expires_at>? ORDER BY seq")) ||
        (rc = prepare(s->db, &s->count, "SELECT count(*) FROM relay_messages")) ||
        (rc = prepare(s->db, &s->begin, "BEGIN IMMEDIATE")) ||
        (rc = prepare(s->db, &s->commit, "COMMIT")) ||
        (rc = prepare(s->db, &s->rollback, "ROLLBACK")))
        goto fail;
    *out = s;
    return PL_OK;
fail:;
    pl_err e = pl__sqlite_err(rc);
    pl__relay_store_close(s);
    return e;
}

static pl_err run(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? PL_OK : pl__sqlite_err(rc);
}

pl_err pl__relay_store_begin(pl__relay_store *s) {
    PL_REQUIRE(s);
    if (s->in_tx) return PL_OK;
    PL_TRY(run(s->begin));
    s->in_tx = true;
    return PL_OK;
}

pl_err pl__relay_store_commit(pl__relay_store *s) {
    PL_REQUIRE(s);
    if (!s->in_tx) return PL_OK;
    pl_err e = run(s->commit);
    if (e != PL_OK) {
        pl__relay_store_rollback(s);
        return e;
    }
    s->in_tx = false;
    return PL_OK;
}

void pl__relay_store_rollback(pl__relay_store *s) {
    PL_REQUIRE(s);
    if (!s->in_tx) return;
    (void)run(s->rollback);
    s->in_tx = false;
}

bool pl__relay_store_in_tx(const pl__relay_store *s) {
    PL_REQUIRE(s);
    return s->in_tx;
}

pl_err pl__relay_store_put(pl__relay_store *s, const pl__relay_record *r) {
    PL_REQUIRE(s && r && r->message);
    sqlite3_stmt *st = s->put;
    sqlite3_bind_text(st, 1, r->topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, r->message, (int)r->message_len, SQLITE_STATIC);
    if (r->attestation) sqlite3_bind_text(st, 4, r->attestation, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, 4);
    sqlite3_bind_int64(st, 5, r->published_at_ms);
    sqlite3_bind_int64(st, 6, r->expires_at_ms);
    sqlite3_bind_int64(st, 7, r->tag);
    sqlite3_bind_text(st, 8, r->publisher, -1, SQLITE_STATIC);
    return run(st);
}

pl_err pl__relay_store_del(pl__relay_store *s, const char *topic, const char *id) {
    PL_REQUIRE(s && topic && id);
    sqlite3_bind_text(s->del, 1, topic, -1, SQLITE_STATIC);
    sqlite3_bind_text(s->del, 2, id, -1, SQLITE_STATIC);
    return run(s->del);
}

pl_err pl__relay_store_prune(pl__relay_store *s, int64_t now_ms, size_t *deleted) {
    PL_REQUIRE(s);
    if (deleted) *deleted = 0;
    sqlite3_bind_int64(s->prune, 1, now_ms);
    PL_TRY(run(s->prune));
    if (deleted) *deleted = (size_t)sqlite3_changes(s->db);
    return PL_OK;
}

pl_err pl__relay_store_count(pl__relay_store *s, size_t *out) {
    PL_REQUIRE(s && out);
    *out = 0;
    int rc = sqlite3_step(s->count);
    if (rc == SQLITE_ROW) *out = (size_t)sqlite3_column_int64(s->count, 0);
    sqlite3_reset(s->count);
    return rc == SQLITE_ROW ? PL_OK : pl__sqlite_err(rc);
}

/* Copy a text column into a fixed buffer; false if absent or of the wrong size. */
static bool col_fixed(sqlite3_stmt *st, int col, char *out, size_t size, bool exact) {
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    if (!t || n >= size || (exact && n != size - 1)) return false;
    memcpy(out, t, n);
    out[n] = '\0';
    return true;
}

pl_err pl__relay_store_load(pl__relay_store *s, int64_t now_ms, pl__relay_store_each_fn fn,
                            void *ud, size_t *skipped) {
    PL_REQUIRE(s && fn);
    if (skipped) *skipped = 0;
    sqlite3_stmt *st = s->load;
    sqlite3_bind_int64(st, 1, now_ms);
    pl_err e = PL_OK;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        pl__relay_record r;
        memset(&r, 0, sizeof r);
        bool ok = sqlite3_column_type(st, 2) == SQLITE_TEXT &&
                  col_fixed(st, 0, r.topic, sizeof r.topic, true) &&
                  col_fixed(st, 1, r.id, sizeof r.id, true) &&
                  col_fixed(st, 7, r.publisher, sizeof r.publisher, false);
        if (ok) {
            r.message = (char *)sqlite3_column_text(st, 2);
            r.message_len = (size_t)sqlite3_column_bytes(st, 2);
            r.attestation = sqlite3_column_type(st, 3) == SQLITE_TEXT
                                ? (char *)sqlite3_column_text(st, 3)
                                : NULL;
            r.published_at_ms = sqlite3_column_int64(st, 4);
            r.expires_at_ms = sqlite3_column_int64(st, 5);
            r.tag = sqlite3_column_int64(st, 6);
            ok = r.message != NULL;
        }
        if (!ok) {
            if (skipped) (*skipped)++;
            continue;
        }
        if ((e = fn(ud, &r)) != PL_OK) break;
    }
    if (e == PL_OK && rc != SQLITE_DONE) e = pl__sqlite_err(rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return e;
}
