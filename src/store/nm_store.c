/* SPDX-License-Identifier: Apache-2.0 */
/* Node-manager counterparties and identity: see include/pairlink/nm_store.h. */
#include "pairlink/nm_store.h"

#include "core/internal.h"
#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/keyfile.h"
#include "store/sqlite.h"
#include "store/store_internal.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

pl_err pl_nm_store_init(pl_store *s) {
    PL_REQUIRE(s);
    int rc = sqlite3_exec(pl__store_db(s),
                          "CREATE TABLE IF NOT EXISTS nm_peer("
                          "  pub BLOB PRIMARY KEY, role INTEGER NOT NULL, name TEXT NOT NULL,"
                          "  fingerprint TEXT NOT NULL, first_seen INTEGER NOT NULL,"
                          "  last_seen INTEGER NOT NULL, confirmed INTEGER NOT NULL)",
                          NULL, NULL, NULL);
    return rc == SQLITE_OK ? PL_OK : pl__sqlite_err(rc);
}

pl_err pl_nm_store_identity(const char *store_path, uint8_t priv[PL_NM_KEY_BYTES],
                            uint8_t pub[PL_NM_KEY_BYTES], bool *created) {
    PL_REQUIRE(store_path && priv && pub);
    if (created) *created = false;
    if (!strcmp(store_path, ":memory:") || !*store_path) {
        pl_x25519_keypair(pub, priv);
        if (created) *created = true;
        return PL_OK;
    }
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s.key", store_path) >= sizeof path) {
        pl_wipe(priv, PL_NM_KEY_BYTES);
        return PL_ERR_TOO_LARGE;
    }
    /* The key file holds 32 random bytes; X25519 clamps them when used, so
     * any 32 bytes are a valid private key. */
    PL_TRY(pl_keyfile_load_or_create(path, priv, created));
    pl_x25519_public(pub, priv);
    return PL_OK;
}

static pl_err step_done(sqlite3_stmt *st) {
    int rc = sqlite3_step(st);
    pl__store_stmt_done(st);
    return rc == SQLITE_DONE ? PL_OK : pl__sqlite_err(rc);
}

pl_err pl_nm_store_put(pl_store *s, const pl_nm_counterparty *c) {
    PL_REQUIRE(s && c);
    /* One statement: the row is whole or absent (in its own transaction,
     * or in the runtime's batch). */
    PL_TRY(pl__store_write_begin(s));
    pl_err err;
    sqlite3_stmt *st = pl__store_stmt(
        s,
        "INSERT INTO nm_peer(pub,role,name,fingerprint,first_seen,last_seen,confirmed)"
        " VALUES(?,?,?,?,?,?,?) ON CONFLICT(pub) DO UPDATE SET role=excluded.role,"
        " name=excluded.name, fingerprint=excluded.fingerprint, last_seen=excluded.last_seen,"
        " confirmed=excluded.confirmed",
        &err);
    if (!st) return err;
    sqlite3_bind_blob(st, 1, c->pub, PL_NM_KEY_BYTES, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, (int)c->role);
    sqlite3_bind_text(st, 3, c->name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, c->fingerprint, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, c->first_seen_ms);
    sqlite3_bind_int64(st, 6, c->last_seen_ms);
    sqlite3_bind_int(st, 7, c->confirmed ? 1 : 0);
    return step_done(st);
}

static pl_err exec_pub(pl_store *s, const char *sql, const uint8_t pub[PL_NM_KEY_BYTES],
                       int64_t t, bool with_t) {
    sqlite3 *db = pl__store_db(s);
    PL_TRY(pl__store_write_begin(s));
    pl_err err;
    sqlite3_stmt *st = pl__store_stmt(s, sql, &err);
    if (!st) return err;
    int i = 1;
    if (with_t) sqlite3_bind_int64(st, i++, t);
    sqlite3_bind_blob(st, i, pub, PL_NM_KEY_BYTES, SQLITE_TRANSIENT);
    PL_TRY(step_done(st));
    return sqlite3_changes(db) > 0 ? PL_OK : PL_ERR_NOT_FOUND;
}

pl_err pl_nm_store_touch(pl_store *s, const uint8_t pub[PL_NM_KEY_BYTES], int64_t now_ms) {
    PL_REQUIRE(s && pub);
    return exec_pub(s, "UPDATE nm_peer SET confirmed=1, last_seen=? WHERE pub=?", pub, now_ms, true);
}

pl_err pl_nm_store_remove(pl_store *s, const uint8_t pub[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(s && pub);
    return exec_pub(s, "DELETE FROM nm_peer WHERE pub=?", pub, 0, false);
}

static bool row_to_cp(sqlite3_stmt *st, pl_nm_counterparty *c) {
    memset(c, 0, sizeof *c);
    if (sqlite3_column_bytes(st, 0) != PL_NM_KEY_BYTES) return false;
    memcpy(c->pub, sqlite3_column_blob(st, 0), PL_NM_KEY_BYTES);
    int role = sqlite3_column_int(st, 1);
    if (role != PL_NM_ROLE_APP && role != PL_NM_ROLE_NODE_MANAGER) return false;
    c->role = (pl_nm_role)role;
    const char *name = (const char *)sqlite3_column_text(st, 2);
    const char *fp = (const char *)sqlite3_column_text(st, 3);
    snprintf(c->name, sizeof c->name, "%s", name ? name : "");
    snprintf(c->fingerprint, sizeof c->fingerprint, "%s", fp ? fp : "");
    c->first_seen_ms = sqlite3_column_int64(st, 4);
    c->last_seen_ms = sqlite3_column_int64(st, 5);
    c->confirmed = sqlite3_column_int(st, 6) != 0;
    return true;
}

#define SELECT_ALL \
    "SELECT pub,role,name,fingerprint,first_seen,last_seen,confirmed FROM nm_peer ORDER BY first_seen, pub"

pl_err pl_nm_store_list(pl_store *s, pl_nm_counterparty **out, size_t *n) {
    PL_REQUIRE(s && out && n);
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(pl__store_db(s), SELECT_ALL, -1, &st, NULL);
    if (rc != SQLITE_OK) return pl__sqlite_err(rc);
    pl_nm_counterparty *v = NULL;
    size_t len = 0, cap = 0;
    pl_err e = PL_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 16;
            pl_nm_counterparty *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                e = PL_ERR_NOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (row_to_cp(st, &v[len])) len++;
    }
    if (e == PL_OK && rc != SQLITE_DONE) e = pl__sqlite_err(rc);
    sqlite3_finalize(st);
    if (e != PL_OK || len == 0) {
        free(v);
        return e;
    }
    *out = v;
    *n = len;
    return PL_OK;
}

void pl_nm_peer_id(char out[PL_NM_PEER_ID_SIZE], const uint8_t pub[PL_NM_KEY_BYTES]) {
    PL_REQUIRE(out && pub);
    pl_hex_encode(out, PL_NM_PEER_ID_SIZE, pub, 8);
}

pl_err pl_nm_store_find(pl_store *s, const char *id, pl_nm_counterparty *out) {
    PL_REQUIRE(s && id && out);
    memset(out, 0, sizeof *out);
    pl_nm_counterparty *all = NULL;
    size_t n = 0;
    PL_TRY(pl_nm_store_list(s, &all, &n));
    size_t idlen = strlen(id);
    bool hexid = idlen >= 4 && idlen <= 64;
    for (size_t i = 0; hexid && i < idlen; i++) hexid = isxdigit((unsigned char)id[i]) != 0;
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        bool match = !strcmp(all[i].name, id) && all[i].name[0];
        if (!match && hexid) {
            char hex[2 * PL_NM_KEY_BYTES + 1];
            pl_hex_encode(hex, sizeof hex, all[i].pub, PL_NM_KEY_BYTES);
            match = !strncasecmp(hex, id, idlen);
        }
        if (match) {
            if (hits++ == 0) *out = all[i];
        }
    }
    free(all);
    if (hits == 1) return PL_OK;
    memset(out, 0, sizeof *out);
    return hits ? PL_ERR_EXISTS : PL_ERR_NOT_FOUND;
}
