/* SPDX-License-Identifier: Apache-2.0 */
/* Where the commands keep their files, and the lock that keeps two serving
 * commands off one store (docs/cli.md, "Files"). */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

const char *pl_cli_data_dir(char *buf, size_t cap, bool create) {
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    /* The XDG base directory spec: a relative XDG_DATA_HOME is invalid. */
    if (xdg && xdg[0] == '/')
        snprintf(buf, cap, "%s/pairlink", xdg);
    else
        snprintf(buf, cap, "%s/.local/share/pairlink", home && *home ? home : ".");
    if (create) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s", buf);
        for (char *p = tmp + 1; *p; p++)
            if (*p == '/') {
                *p = 0;
                (void)mkdir(tmp, 0700);
                *p = '/';
            }
        (void)mkdir(tmp, 0700); /* a failure shows when the file is opened */
    }
    return buf;
}

const char *pl_cli_default_file(char *buf, size_t cap, const char *name, bool create) {
    pl_cli_data_dir(buf, cap, create);
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "/%s", name);
    return buf;
}

const char *pl_cli_default_store(char *buf, size_t cap, const char *name, bool create) {
    const char *env = getenv("PAIRLINK_STORE");
    if (env && *env) return env;
    return pl_cli_default_file(buf, cap, name, create);
}

int pl_cli_store_must_exist(const pl_cli_out *o, const char *path) {
    struct stat st;
    if (!strcmp(path, ":memory:") || stat(path, &st) == 0) return 0;
    if (errno != ENOENT) return 0; /* opening it says what is wrong */
    return pl_cli_error(o, PL_ERR_NOT_FOUND,
                        "no store at %s: check the path (nothing was created there: this command "
                        "only reads a store)",
                        path);
}

/* The process holding a flock on (dev, ino), from /proc/locks; 0 if not
 * found (another system, or the holder is gone). */
static long lock_holder(dev_t dev, ino_t ino) {
    FILE *f = fopen("/proc/locks", "re");
    if (!f) return 0;
    char line[256];
    long pid = 0;
    while (!pid && fgets(line, sizeof line, f)) {
        /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" ("->" marks waiters) */
        char kind[16], mode[16], rw[16];
        long p;
        unsigned maj, min;
        unsigned long long i;
        if (strstr(line, "->")) continue;
        if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%llu", kind, mode, rw, &p, &maj, &min,
                   &i) == 7 &&
            !strcmp(kind, "FLOCK") && i == (unsigned long long)ino && makedev(maj, min) == dev)
            pid = p;
    }
    fclose(f);
    return pid;
}

/* "pairlink wc run --store x.db" from /proc/PID/cmdline, into buf ("" if
 * unreadable). */
static void command_line(long pid, char *buf, size_t cap) {
    buf[0] = '\0';
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
    FILE *f = fopen(path, "re");
    if (!f) return;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && buf[n - 1] == '\0')
        n--;
    for (size_t i = 0; i < n; i++)
        if (buf[i] == '\0') buf[i] = ' ';
    /* the program as a name, not a path */
    char *space = strchr(buf, ' ');
    char *slash = NULL;
    for (char *p = buf; *p && (!space || p < space); p++)
        if (*p == '/') slash = p;
    if (slash) memmove(buf, slash + 1, strlen(slash + 1) + 1);
}

int pl_cli_store_lock(pl_cli_lock *l, const pl_cli_out *o, const char *path) {
    l->fd = -1;
    if (!strcmp(path, ":memory:") || !*path) return 0;
    /* flock, not fcntl: SQLite holds POSIX locks on this file, and closing
     * any descriptor of it would drop those; flock locks are separate from
     * them on Linux. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0; /* the client opened it: it is there */
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        l->fd = fd;
        return 0;
    }
    int e = errno;
    struct stat st;
    long pid = e == EWOULDBLOCK && fstat(fd, &st) == 0 ? lock_holder(st.st_dev, st.st_ino) : 0;
    close(fd);
    if (e != EWOULDBLOCK) return 0; /* no locks here (some network file systems): go on */
    char cmdline[512] = "";
    if (pid > 0) command_line(pid, cmdline, sizeof cmdline);
    char who[640];
    if (pid > 0)
        snprintf(who, sizeof who, "process %ld%s%s%s", pid, *cmdline ? " (" : "", cmdline,
                 *cmdline ? ")" : "");
    else
        snprintf(who, sizeof who, "another process");
    return pl_cli_error(o, PL_ERR_STORE_LOCKED,
                        "store %s is in use by %s: one serving command per store (stop it, or give "
                        "this one another --store)",
                        path, who);
}

void pl_cli_store_unlock(pl_cli_lock *l) {
    if (l->fd >= 0) close(l->fd);
    l->fd = -1;
}
