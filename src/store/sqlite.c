/* SPDX-License-Identifier: Apache-2.0 */
/* The one SQLite error mapper: see sqlite.h. */
#include "store/sqlite.h"

#include "core/internal.h"

pl_err pl__sqlite_err(int rc) {
    switch (rc) {
    case SQLITE_IOERR_NOMEM: return pl__fail(PL_ERR_NOMEM, rc);
    case SQLITE_IOERR_CORRUPTFS: return pl__fail(PL_ERR_STORE_CORRUPT, rc);
    default: break;
    }
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT: return pl__fail(PL_ERR_STORE_CORRUPT, rc);
    case SQLITE_NOMEM: return pl__fail(PL_ERR_NOMEM, rc);
    default: return pl__fail(PL_ERR_STORE, rc);
    }
}

void pl__sqlite_setup(sqlite3 *db) {
    if (db) sqlite3_extended_result_codes(db, 1);
}
