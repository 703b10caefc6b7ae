/* SPDX-License-Identifier: Apache-2.0 */
/* pl_detail_text: the words behind a wrapped errno, SQLite or OpenSSL code
 * (see include/pairlink/common.h). Here rather than in err.c because it
 * needs the message tables of SQLite and OpenSSL. */
#include "core/internal.h"

#include <openssl/err.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

const char *pl_detail_text(pl_err err, char *buf, size_t cap) {
    PL_REQUIRE(buf && cap > 0);
    buf[0] = '\0';
    long d = pl_last_detail();
    if (d == 0) return buf;
    switch (err) {
    case PL_ERR_SYS:
    case PL_ERR_IO:
    case PL_ERR_KEY_FILE:
        /* the GNU strerror_r (_GNU_SOURCE): it may return a static string
         * instead of filling tmp */
        {
            char tmp[256];
            const char *t = strerror_r((int)d, tmp, sizeof tmp);
            snprintf(buf, cap, "%s", t ? t : "");
        }
        break;
    case PL_ERR_STORE:
    case PL_ERR_STORE_CORRUPT:
        /* sqlite3_errstr takes primary and extended codes alike */
        snprintf(buf, cap, "%s", sqlite3_errstr((int)d));
        break;
    case PL_ERR_TLS:
    case PL_ERR_CRYPTO: {
        const char *r = ERR_reason_error_string((unsigned long)d);
        if (r) snprintf(buf, cap, "%s", r);
        break;
    }
    default:
        break;
    }
    return buf;
}
