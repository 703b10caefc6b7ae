/* SPDX-License-Identifier: Apache-2.0 */
/* What every SQLite-backed store of the library shares (the pairing store,
 * the node-manager tables, the relay mailbox). Private; not installed. */
#ifndef PAIRLINK_STORE_SQLITE_H
#define PAIRLINK_STORE_SQLITE_H

#include "pairlink/common.h"

#include <sqlite3.h>

/* The pl_err for a failed SQLite call's result code, primary or extended
 * (the stores open their handles with extended codes on): a damaged or
 * foreign file is PL_ERR_STORE_CORRUPT, memory PL_ERR_NOMEM, everything
 * else PL_ERR_STORE. The code is kept as the error's detail (pl__fail). */
pl_err pl__sqlite_err(int rc);

/* Switch db to extended result codes; call right after opening it. */
void pl__sqlite_setup(sqlite3 *db);

#endif
