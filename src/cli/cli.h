/* The pairlink command line. The CLI is the only layer that prints or exits.
 * Each subcommand is `int <name>(int argc, char **argv)` returning the
 * process exit status, with argv[0] the subcommand name (getopt_long-ready). */
#ifndef PAIRLINK_CLI_H
#define PAIRLINK_CLI_H

#include "pairlink/common.h"

#include <stdbool.h>

typedef struct pl_cli_cmd {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
} pl_cli_cmd;

/* Print "pairlink <cmd>: <what>: <message> (<NAME>)" to stderr; returns the
 * exit status to use (1). */
int pl_cli_fail(const char *cmd, const char *what, pl_err err);
/* Print "pairlink <cmd>: <message>" (printf-style) to stderr; returns 2 (usage). */
int pl_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Dispatch argv[1] among `cmds` (for nested commands like `uri new`). */
int pl_cli_dispatch(const char *prefix, const pl_cli_cmd *cmds, size_t n, int argc, char **argv);
/* Print a QR code of `text` to stdout with terminal half-blocks. */
pl_err pl_cli_print_qr(const char *text);

/* Subcommands (one file each under src/cli/). */
int pl_cli_version(int argc, char **argv);
int pl_cli_uri(int argc, char **argv);
int pl_cli_envelope(int argc, char **argv);
int pl_cli_noise(int argc, char **argv);
int pl_cli_relay(int argc, char **argv);
int pl_cli_demo(int argc, char **argv);
int pl_cli_wc(int argc, char **argv);
/* cmd_nm.c: node-manager pairing */
int pl_cli_app(int argc, char **argv);
int pl_cli_node_manager(int argc, char **argv);
int pl_cli_peers(int argc, char **argv);
int pl_cli_send(int argc, char **argv);
/* cmd_p2p.c: libp2p host */
int pl_cli_p2p(int argc, char **argv);
/* cmd_waku.c: `waku node|subscribe|publish` */
int pl_cli_waku(int argc, char **argv);

#endif
