/* SPDX-License-Identifier: Apache-2.0 */
/* What every command prints: events, failures a person can act on (the
 * path, the cause, the fix), one JSON vocabulary (docs/cli.md). */
#include "cli/cli.h"

#include "pairlink/log.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void print_json_line(json_t *ev) {
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s) puts(s);
    free(s);
}

void pl_cli_emit(const pl_cli_out *o, json_t *ev) {
    if (!ev) return;
    if (o->json) {
        print_json_line(ev);
    } else {
        /* words: the event's name, then key=value (values as JSON) */
        const char *key;
        json_t *v;
        bool first = true;
        json_object_foreach(ev, key, v) {
            if (!strcmp(key, "event")) {
                printf("%s%s", first ? "" : " ", json_string_value(v));
            } else {
                char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
                printf("%s%s=%s", first ? "" : " ", key, s ? s : "?");
                free(s);
            }
            first = false;
        }
        printf("\n");
    }
    json_decref(ev);
}

void pl_cli_emit_json(const pl_cli_out *o, json_t *ev) {
    if (ev && o->json) print_json_line(ev);
    json_decref(ev);
}

int pl_cli_error(const pl_cli_out *o, pl_err err, const char *fmt, ...) {
    char msg[1024];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    } else {
        snprintf(msg, sizeof msg, "%s", pl_strerror(err));
    }
    if (o->json) {
        json_t *ev = json_object();
        json_object_set_new(ev, "event", json_string("error"));
        json_object_set_new(ev, "code", json_string(pl_errname(err)));
        json_object_set_new(ev, "message", json_string(msg));
        print_json_line(ev);
        json_decref(ev);
    } else {
        fflush(stdout);
        fprintf(stderr, "pairlink %s: %s (%s)\n", o->cmd, msg, pl_errname(err));
    }
    return 1;
}

const char *pl_cli_detail(pl_err err, char *buf, size_t cap) {
    return pl_detail_text(err, buf, cap);
}

void pl_cli_key_file_problem(const char *path, char *buf, size_t cap) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        snprintf(buf, cap, "cannot be read: %s", strerror(errno));
    } else if (S_ISLNK(st.st_mode)) {
        snprintf(buf, cap,
                 "is a symbolic link: a key file must be the file itself (links are not "
                 "followed, so that nobody can point it elsewhere)");
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(buf, cap, "is not a regular file");
    } else if (st.st_mode & 077) {
        snprintf(buf, cap,
                 "holds secret keys but others may read it (mode %04o): run 'chmod 600 %s'",
                 (unsigned)(st.st_mode & 07777), path);
    } else if (st.st_uid != geteuid()) {
        snprintf(buf, cap,
                 "belongs to uid %u, not to this user (uid %u): run as its owner, or 'chown %u %s'",
                 (unsigned)st.st_uid, (unsigned)geteuid(), (unsigned)geteuid(), path);
    } else {
        snprintf(buf, cap,
                 "has the wrong size for a key file (%lld bytes): damaged, or not a key file",
                 (long long)st.st_size);
    }
}

int pl_cli_key_file_error(const pl_cli_out *o, const char *path, pl_err err, const char *what) {
    char why[1024], detail[256];
    if (err == PL_ERR_KEY_FILE) {
        pl_cli_key_file_problem(path, why, sizeof why);
        return pl_cli_error(o, err, "key file %s %s", path, why);
    }
    pl_cli_detail(err, detail, sizeof detail);
    return pl_cli_error(o, err, "key file %s: %s: %s", path, what,
                        *detail ? detail : pl_strerror(err));
}

/* The directory part of path (a copy: dirname may modify its argument). */
static const char *dir_of(const char *path, char *buf, size_t cap) {
    snprintf(buf, cap, "%s", path);
    return dirname(buf);
}

int pl_cli_store_error(const pl_cli_out *o, const char *path, pl_err err) {
    char detail[256], why[1024], dir[4096];
    pl_cli_detail(err, detail, sizeof detail);
    int e = err == PL_ERR_SYS || err == PL_ERR_IO ? (int)pl_last_detail() : 0;
    switch (err) {
    case PL_ERR_KEY_FILE:
        pl_cli_key_file_problem(path, why, sizeof why);
        return pl_cli_error(o, err, "store %s %s", path, why);
    case PL_ERR_STORE_CORRUPT:
        return pl_cli_error(o, err, "store %s is not a pairlink store, or it is damaged%s%s%s",
                            path, *detail ? " (" : "", detail, *detail ? ")" : "");
    case PL_ERR_STORE_LOCKED:
        return pl_cli_error(o, err, "store %s is in use by another process", path);
    case PL_ERR_SYS:
    case PL_ERR_IO:
        if (e == EISDIR)
            return pl_cli_error(
                o, err, "store %s is a directory: name a file, e.g. --store %s/wc.db", path, path);
        if (e == ENOENT || e == ENOTDIR)
            return pl_cli_error(o, err, "store %s: the directory %s does not exist", path,
                                dir_of(path, dir, sizeof dir));
        if (e == EACCES || e == EPERM)
            return pl_cli_error(o, err,
                                "store %s cannot be opened for reading and writing: %s (check the "
                                "permissions of the file and of %s)",
                                path, detail, dir_of(path, dir, sizeof dir));
        return pl_cli_error(o, err, "store %s: %s", path, *detail ? detail : pl_strerror(err));
    case PL_ERR_STORE: {
        /* SQLite in WAL mode writes PATH-wal and PATH-shm beside the file:
         * a writable file in a read-only directory fails too. */
        long code = pl_last_detail() & 0xff;
        bool perm = code == 8 /* SQLITE_READONLY */ || code == 14 /* SQLITE_CANTOPEN */ ||
                    code == 3 /* SQLITE_PERM */ || code == 10 /* SQLITE_IOERR */;
        if (perm)
            return pl_cli_error(
                o, err,
                "store %s: %s (the file and its directory %s must be writable: SQLite "
                "keeps %s-wal and %s-shm beside it)",
                path, *detail ? detail : pl_strerror(err), dir_of(path, dir, sizeof dir), path,
                path);
        return pl_cli_error(o, err, "store %s: %s", path, *detail ? detail : pl_strerror(err));
    }
    default:
        return pl_cli_error(o, err, "store %s: %s", path, pl_strerror(err));
    }
}

int pl_cli_start_error(const pl_cli_out *o, const char *store, const char *relay, pl_err err) {
    switch (err) {
    case PL_ERR_BAD_URL:
        return pl_cli_error(o, err, "relay %s: %s", relay, pl_strerror(err));
    case PL_ERR_TLS: {
        char detail[256];
        pl_cli_detail(err, detail, sizeof detail);
        return pl_cli_error(o, err, "relay %s: cannot set up TLS%s%s", relay, *detail ? ": " : "",
                            detail);
    }
    default:
        return pl_cli_store_error(o, store, err);
    }
}

static void log_sink(void *ud, pl_log_level level, const char *source, const char *line) {
    (void)ud;
    fflush(stdout);
    fprintf(stderr, "pairlink: %s %s: %s\n", source, pl_log_level_name(level), line);
}

void pl_cli_log_init(bool verbose) {
    pl_set_log(log_sink, NULL, verbose ? PL_LOG_DEBUG : PL_LOG_ERROR);
}
