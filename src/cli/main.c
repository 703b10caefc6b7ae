#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The subcommand table. Keep it sorted by name. */
static const pl_cli_cmd commands[] = {
    {"version", pl_cli_version, "print the version"},
};

int pl_cli_fail(const char *cmd, const char *what, pl_err err) {
    fprintf(stderr, "pairlink %s: %s: %s (%s)\n", cmd, what, pl_strerror(err), pl_errname(err));
    return 1;
}

int pl_cli_usage_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "pairlink %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (try 'pairlink %s --help')\n", cmd);
    va_end(ap);
    return 2;
}

static void list_commands(FILE *f, const char *prefix, const pl_cli_cmd *cmds, size_t n) {
    fprintf(f, "usage: %s <command> [options]\n\ncommands:\n", prefix);
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\n'%s <command> --help' describes a command.\n", prefix);
}

int pl_cli_dispatch(const char *prefix, const pl_cli_cmd *cmds, size_t n, int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        list_commands(argc < 2 ? stderr : stdout, prefix, cmds, n);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(argv[1], cmds[i].name)) return cmds[i].main(argc - 1, argv + 1);
    fprintf(stderr, "%s: unknown command '%s' (try '%s --help')\n", prefix, argv[1], prefix);
    return 2;
}

int pl_cli_version(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: pairlink version [--json]\n\nPrint the pairlink version.\n");
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "--json")) printf("{\"version\":\"%s\"}\n", PL_VERSION_STRING);
    else printf("pairlink %s\n", PL_VERSION_STRING);
    return 0;
}

int main(int argc, char **argv) {
    pl_err e = pl_init();
    if (e != PL_OK) return pl_cli_fail("init", "library initialisation", e);
    /* stdout is line-buffered even into a pipe so that event lines reach
     * scripts (tests, GUIs) as they happen. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    return pl_cli_dispatch("pairlink", commands, sizeof commands / sizeof commands[0], argc, argv);
}
