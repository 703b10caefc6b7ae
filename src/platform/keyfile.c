/* SPDX-License-Identifier: Apache-2.0 */
/* Secret key files (see include/pairlink/keyfile.h). */
#include "pairlink/keyfile.h"
#include "platform/keyfile_internal.h"

#include "core/internal.h"
#include "pairlink/hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Reads one byte more than the largest size so that a file that grew
 * after fstat is still caught as the wrong size. */
static pl_err read_bounded(int fd, uint8_t *out, size_t min, size_t max, size_t *len) {
    uint8_t buf[PL__KEYFILE_MAX + 1];
    size_t got = 0;
    while (got < max + 1) {
        ssize_t n = read(fd, buf + got, max + 1 - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            pl_wipe(buf, sizeof buf);
            return pl__fail(PL_ERR_IO, errno);
        }
        if (n == 0) break;
        got += (size_t)n;
    }
    if (got < min || got > max) {
        pl_wipe(buf, sizeof buf);
        return PL_ERR_KEY_FILE;
    }
    memcpy(out, buf, got);
    *len = got;
    pl_wipe(buf, sizeof buf);
    return PL_OK;
}

pl_err pl__keyfile_load_var(const char *path, uint8_t *out, size_t min, size_t max, size_t *len) {
    PL_REQUIRE(path != NULL && out != NULL && len != NULL);
    PL_REQUIRE(min >= 1 && min <= max && max <= PL__KEYFILE_MAX);
    *len = 0;
    pl_wipe(out, max);

    /* O_NOFOLLOW: a symlink planted at the key path must not redirect us to
     * another file; O_NONBLOCK keeps a FIFO planted there from blocking. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) return PL_ERR_NOT_FOUND;
        if (e == ELOOP) return pl__fail(PL_ERR_KEY_FILE, e);
        return pl__fail(PL_ERR_IO, e);
    }
    struct stat st;
    pl_err err = PL_OK;
    if (fstat(fd, &st) != 0) {
        err = pl__fail(PL_ERR_IO, errno);
    } else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
               (st.st_mode & (S_IRWXG | S_IRWXO)) != 0 || st.st_size < (off_t)min ||
               st.st_size > (off_t)max) {
        err = PL_ERR_KEY_FILE;
    } else {
        err = read_bounded(fd, out, min, max, len);
    }
    close(fd);
    if (err != PL_OK) {
        pl_wipe(out, max);
        *len = 0;
    }
    return err;
}

pl_err pl_keyfile_load(const char *path, uint8_t key[PL_KEYFILE_BYTES]) {
    PL_REQUIRE(path != NULL);
    PL_REQUIRE(key != NULL);
    size_t len = 0;
    return pl__keyfile_load_var(path, key, PL_KEYFILE_BYTES, PL_KEYFILE_BYTES, &len);
}

static pl_err write_all(int fd, const uint8_t *p, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return pl__fail(PL_ERR_IO, errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return PL_OK;
}

/* Make the new directory entry durable; failure here is not fatal to the
 * caller (the key is in place), so errors are ignored. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = NULL;
    if (!slash) {
        dir = strdup(".");
    } else if (slash == path) {
        dir = strdup("/");
    } else {
        dir = strndup(path, (size_t)(slash - path));
    }
    if (!dir) return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
}

/* Publish tmp at path without ever replacing an existing file. */
static int link_noreplace(const char *tmp, const char *path) {
    if (link(tmp, path) == 0) return 0;
    int e = errno;
    if (e == EEXIST) return -1;
#ifdef RENAME_NOREPLACE
    /* File systems without hard links (some FUSE/network mounts). */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0) return 1;
#endif
    errno = e;
    return -1;
}

pl_err pl__keyfile_create(const char *path, const uint8_t *data, size_t len) {
    PL_REQUIRE(path != NULL && data != NULL && len >= 1 && len <= PL__KEYFILE_MAX);
    size_t plen = strlen(path);
    if (plen == 0) return PL_ERR_INVALID_ARG;
    char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) return PL_ERR_NOMEM;
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");

    /* mkostemp opens with O_CREAT|O_EXCL and mode 0600. */
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        pl_err err = pl__fail(PL_ERR_IO, errno);
        free(tmp);
        return err;
    }
    pl_err err = PL_OK;
    if (fchmod(fd, S_IRUSR | S_IWUSR) != 0) err = pl__fail(PL_ERR_IO, errno);
    if (err == PL_OK) err = write_all(fd, data, len);
    if (err == PL_OK && fsync(fd) != 0) err = pl__fail(PL_ERR_IO, errno);
    if (close(fd) != 0 && err == PL_OK) err = pl__fail(PL_ERR_IO, errno);

    int linked = -1;
    if (err == PL_OK) {
        linked = link_noreplace(tmp, path);
        if (linked < 0) err = errno == EEXIST ? PL_ERR_EXISTS : pl__fail(PL_ERR_IO, errno);
    }
    if (linked != 1) (void)unlink(tmp); /* renamed files are already gone */
    free(tmp);
    if (err == PL_OK) sync_parent_dir(path);
    return err;
}

pl_err pl_keyfile_load_or_create(const char *path, uint8_t key[PL_KEYFILE_BYTES], bool *created) {
    PL_REQUIRE(path != NULL);
    PL_REQUIRE(key != NULL);
    if (created) *created = false;

    pl_err err = pl_keyfile_load(path, key);
    if (err != PL_ERR_NOT_FOUND) return err;
    if (path[0] == '\0') return PL_ERR_INVALID_ARG;

    pl_random(key, PL_KEYFILE_BYTES);
    err = pl__keyfile_create(path, key, PL_KEYFILE_BYTES);
    if (err == PL_ERR_EXISTS) {
        /* Lost a race with another creator: use its key. */
        pl_wipe(key, PL_KEYFILE_BYTES);
        return pl_keyfile_load(path, key);
    }
    if (err != PL_OK) {
        pl_wipe(key, PL_KEYFILE_BYTES);
        return err;
    }
    if (created) *created = true;
    return PL_OK;
}
