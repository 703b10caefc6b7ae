/* SPDX-License-Identifier: Apache-2.0 */
#include "cli/cli.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The subcommand table. Keep it sorted by name. */
static const pl_cli_cmd commands[] = {
    {"app", pl_cli_app, "node-manager pairing, app side: pair (shows a code), run"},
    {"demo", pl_cli_demo, "walk through both pairing flows on an embedded relay"},
    {"envelope", pl_cli_envelope, "seal or open a WalletConnect envelope (type 0, 1, 2)"},
    {"node-manager", pl_cli_node_manager, "node-manager pairing, node side: pair CODE, run"},
    {"p2p", pl_cli_p2p, "libp2p: print the peer id, listen, ping a peer"},
    {"noise", pl_cli_noise, "Waku Noise: replay/generate transcripts, pairing demo"},
    {"peers", pl_cli_peers, "list or remove paired counterparties"},
    {"relay", pl_cli_relay, "run a WalletConnect relay server"},
    {"send", pl_cli_send, "send a message to a paired counterparty over a Noise session"},
    {"uri", pl_cli_uri, "create or parse a WalletConnect pairing URI"},
    {"version", pl_cli_version, "print the version"},
    {"waku", pl_cli_waku, "Waku relay: run a node, subscribe, publish"},
    {"wc", pl_cli_wc, "WalletConnect pairings: create, pair, run, list, ping, delete"},
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
    fprintf(f, "usage: %s <command> [options]\n", prefix);
    if (!strchr(prefix, ' ')) fprintf(f, "       %s --version\n", prefix); /* the top level */
    fprintf(f, "\ncommands:\n");
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
    /* pl_version(): the library's own, which is what runs. */
    if (argc > 1 && !strcmp(argv[1], "--json")) printf("{\"version\":\"%s\"}\n", pl_version());
    else printf("pairlink %s\n", pl_version());
    return 0;
}

int main(int argc, char **argv) {
    pl_err e = pl_init();
    if (e != PL_OK) return pl_cli_fail("init", "library initialisation", e);
    /* stdout is line-buffered even into a pipe so that event lines reach
     * scripts (tests, GUIs) as they happen. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A peer that resets a TCP connection must not kill the process:
     * libuv's writes raise SIGPIPE; the write error is handled instead. */
    signal(SIGPIPE, SIG_IGN);
    /* The libraries' notices are noise for users; errors stay (--verbose:
     * everything). */
    pl_cli_log_init(false);
    if (argc == 2 && !strcmp(argv[1], "--version")) return pl_cli_version(1, argv + 1);
    return pl_cli_dispatch("pairlink", commands, sizeof commands / sizeof commands[0], argc, argv);
}
