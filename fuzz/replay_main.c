/* SPDX-License-Identifier: Apache-2.0 */
/* Replays a libFuzzer target without libFuzzer: linked with one fuzz/fuzz_*.c
 * in the normal build, it feeds every file named on the command line (or
 * found directly in a directory named there) to LLVMFuzzerTestOneInput, once
 * each, in name order. A target reports a broken property by aborting, so
 * the exit status tells CTest. An argument that yields no file at all is an
 * error: a missing corpus must not pass as an empty one.
 *
 * Usage: replay_fuzz_X PATH...   (files or corpus directories) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target; weak so that targets without it link. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Inputs above this are not seeds; refuse rather than read a huge file. */
#define REPLAY_MAX_INPUT (1u << 20)

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    /* Exact-size heap copy, so ASan sees reads past the input. */
    uint8_t *buf = malloc(REPLAY_MAX_INPUT);
    size_t n = buf ? fread(buf, 1, REPLAY_MAX_INPUT, f) : 0;
    int bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    uint8_t *data = bad ? NULL : malloc(n ? n : 1);
    if (!data) {
        fprintf(stderr, "%s: cannot read (or larger than %u bytes)\n", path, REPLAY_MAX_INPUT);
        free(buf);
        return -1;
    }
    memcpy(data, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(data, n);
    free(data);
    return 0;
}

static int cmp_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the regular files directly inside dir; returns how many, or -1. */
static long run_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (!grown) abort();
            names = grown;
        }
        if (!(names[n++] = strdup(e->d_name))) abort();
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_names);
    long ran = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) != 0) ran = -1;
            else if (ran >= 0) ran++;
        }
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int status = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long ran;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) ran = run_dir(argv[i]);
        else ran = run_file(argv[i]) == 0 ? 1 : -1;
        if (ran <= 0) {
            fprintf(stderr, "%s: %s\n", argv[i], ran == 0 ? "no input files" : "failed");
            status = 1;
        } else {
            printf("%s: %ld input(s) ok\n", argv[i], ran);
        }
    }
    return status;
}
