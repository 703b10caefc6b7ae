/* The pairlink command line. The CLI is the only layer that prints or exits.
 * Each subcommand is `int <name>(int argc, char **argv)` returning the
 * process exit status, with argv[0] the subcommand name (getopt_long-ready). */
#ifndef PAIRLINK_CLI_H
#define PAIRLINK_CLI_H

#include "pairlink/common.h"
#include "pairlink/waku_node.h"

#include <stdbool.h>
#include <stdio.h>

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

/* QR codes (qr.c). Commands that show one take --qr, --no-qr and
 * --qr-png FILE; by default the code is drawn only when stdout is a
 * terminal. */
typedef enum { PL_CLI_QR_AUTO, PL_CLI_QR_ON, PL_CLI_QR_OFF } pl_cli_qr_mode;
typedef struct pl_cli_qr {
    pl_cli_qr_mode mode;  /* --qr: ON, --no-qr: OFF */
    const char *png_path; /* --qr-png FILE, or NULL */
    FILE *png;            /* opened by pl_cli_qr_open */
    bool png_created;     /* the file did not exist before */
} pl_cli_qr;
/* Open --qr-png's file (created with mode 0600) before any work, so that a
 * path that cannot be written fails at once. Prints the reason; returns 0 or
 * the exit status 1. */
int pl_cli_qr_open(pl_cli_qr *q, const char *cmd);
/* Show `text`: on stdout when the mode and stdout say so (never with
 * `json`, which keeps one object per line), and into the PNG file if one is
 * open. Returns 0, or 1 after printing why the file could not be written. */
int pl_cli_qr_show(pl_cli_qr *q, const char *cmd, const char *text, bool json);
/* Close an unused PNG file (removing it when this run created it). */
void pl_cli_qr_close(pl_cli_qr *q);
/* Draw a QR code of `text` with half blocks in explicit black and white,
 * with a 4-module quiet zone. PL_ERR_TOO_LARGE when it does not fit a QR. */
pl_err pl_cli_print_qr(FILE *f, const char *text);
/* Write a QR code of `text` as a 1-bit greyscale PNG (8 pixels a module,
 * 4-module quiet zone). PL_ERR_IO on a write error (errno says why). */
pl_err pl_cli_write_qr_png(FILE *f, const char *text);

/* Waku network options (waku_opts.c), shared by `pairlink waku ...` and the
 * node-manager commands' --waku: --listen, --peer, --cluster, --shard,
 * --autosharding, --key-file, --muxer. */
#define PL_CLI_WAKU_MAX_LISTEN 8
typedef struct pl_cli_waku_opts {
    const char *listen[PL_CLI_WAKU_MAX_LISTEN];
    size_t nlisten;
    const char *peers[PL_WAKU_NODE_MAX_PEERS_OPT];
    size_t npeers;
    unsigned long cluster; /* default 16 */
    uint16_t shards[PL_WAKU_NODE_MAX_SHARDS_OPT];
    size_t nshards;
    unsigned long autoshard; /* 0: static sharding */
    const char *key_file;
    pl_p2p_muxers muxers;
    bool given; /* any of them was given */
} pl_cli_waku_opts;
void pl_cli_waku_init(pl_cli_waku_opts *w);
/* Take option `name` (without the dashes) with its argument: 1 when it is
 * one of the above, 0 when it is not, -status after a usage error (printed). */
int pl_cli_waku_option(pl_cli_waku_opts *w, const char *cmd, const char *name, const char *arg);
/* After parsing: 0, or the usage status (printed) for options that clash. */
int pl_cli_waku_check(const pl_cli_waku_opts *w, const char *cmd);
/* Node options from them (key and callbacks left for the caller; the
 * pointers borrow from w). */
void pl_cli_waku_node_opts(const pl_cli_waku_opts *w, pl_waku_node_opts *o);

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
