/* Private to the library: lets other tables (nm_store.c) share the one
 * database handle of a pl_store. Not installed. */
#ifndef PAIRLINK_STORE_INTERNAL_H
#define PAIRLINK_STORE_INTERNAL_H

#include "pairlink/store.h"

#include <sqlite3.h>

/* The store's connection; owned by the store, valid until pl_store_close. */
sqlite3 *pl__store_db(pl_store *s);

#endif
