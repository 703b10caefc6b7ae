/* SPDX-License-Identifier: Apache-2.0 */
/* The pairlink command line. The CLI is the only layer that prints or exits.
 * Each subcommand is `int <name>(int argc, char **argv)` returning the
 * process exit status, with argv[0] the subcommand name (getopt_long-ready). */
#ifndef PAIRLINK_CLI_H
#define PAIRLINK_CLI_H

#include "pairlink/common.h"
#include "pairlink/waku_node.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <uv.h>

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
/* ---- output (out.c): one vocabulary for every command, docs/cli.md ----
 * A command prints one line per event on stdout: with --json a JSON object
 * whose first key is "event", else the same as words ("event key=value
 * ..."), unless the command prints words of its own. A failure goes to
 * stderr as "pairlink CMD: MESSAGE (PL_ERR_NAME)", or with --json to
 * stdout as {"event":"error","code":"PL_ERR_NAME","message":MESSAGE}. */
typedef struct pl_cli_out {
    const char *cmd; /* "wc pair" */
    bool json;
} pl_cli_out;
/* Print the event `ev` (an object, "event" first) and release it. */
void pl_cli_emit(const pl_cli_out *o, json_t *ev);
/* Print the event as JSON only with --json (commands that print their own
 * words otherwise); releases it. */
void pl_cli_emit_json(const pl_cli_out *o, json_t *ev);
/* Report a failure (MESSAGE printf-style; NULL: pl_strerror(err)); returns
 * the exit status 1. */
int pl_cli_error(const pl_cli_out *o, pl_err err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The store at `path` could not be opened or read: say what is wrong with
 * the path and how to fix it (the directory, the permissions, the errno
 * or SQLite cause behind err). Returns 1. */
int pl_cli_store_error(const pl_cli_out *o, const char *path, pl_err err);
/* A key file (or a store, which holds keys) was refused with
 * PL_ERR_KEY_FILE: why, and the command that fixes it, in buf. */
void pl_cli_key_file_problem(const char *path, char *buf, size_t cap);
/* A key file could not be loaded, created or saved (`what`): which file,
 * why, and the fix (the chmod for unsafe permissions). Returns 1. */
int pl_cli_key_file_error(const pl_cli_out *o, const char *path, pl_err err, const char *what);
/* A client could not start: a relay error (a bad --relay URL) is reported
 * as the relay's, anything else as the store's. Returns 1. */
int pl_cli_start_error(const pl_cli_out *o, const char *store, const char *relay, pl_err err);
/* The text of the underlying cause of the last wrapped failure (errno,
 * SQLite, OpenSSL), or "" when none was recorded. */
const char *pl_cli_detail(pl_err err, char *buf, size_t cap);

/* The log sink of every command (pl_set_log, pairlink/log.h): "pairlink:
 * SOURCE LEVEL: LINE" on stderr; errors only, or everything the libraries
 * offer with `verbose` (--verbose). main() installs it at errors only. */
void pl_cli_log_init(bool verbose);

/* ---- signals (signals.c): the one rule of docs/cli.md ----
 * SIGINT and SIGTERM stop a command that runs a loop, once; the exit
 * status is then pl_cli_signal_status(). */
typedef struct pl_cli_signals {
    int signum; /* the first signal received; 0 while none */
    void (*on_stop)(void *data, int signum);
    void *data;
    /* private */
    uv_signal_t sigint_, sigterm_;
    bool started_;
} pl_cli_signals;
/* Catch SIGINT and SIGTERM on `loop`: the first one sets signum and calls
 * on_stop(data, signum); later ones are ignored (the command is stopping). */
void pl_cli_signals_start(pl_cli_signals *s, uv_loop_t *loop,
                          void (*on_stop)(void *data, int signum), void *data);
/* Close the handles (from the loop; no-op if not started or closing). */
void pl_cli_signals_close(pl_cli_signals *s);
/* Exit status after a signal: 130 for SIGINT (the user interrupted); for
 * SIGTERM 0 when the command was serving (asked to stop: a service
 * manager's normal stop), else 143 (what it waited for did not happen). */
int pl_cli_signal_status(int signum, bool serving);
/* The one line that says the command stopped on a signal: "pairlink CMD:
 * interrupted (SIGINT)" on stderr, or {"event":"stopped","signal":"SIGINT"}
 * with --json. */
void pl_cli_signal_report(const pl_cli_out *o, int signum);

/* ---- paths and the store lock (paths.c) ----
 * Every command keeps its files in one data directory:
 * $XDG_DATA_HOME/pairlink, else ~/.local/share/pairlink (docs/cli.md). */
/* The data directory into buf; created (mode 0700, parents too) when
 * `create`. Returns buf. */
const char *pl_cli_data_dir(char *buf, size_t cap, bool create);
/* The default store `name` (e.g. "wc.db"): $PAIRLINK_STORE when set, else
 * in the data directory (created when `create`). Returns buf or the
 * environment's string. */
const char *pl_cli_default_store(char *buf, size_t cap, const char *name, bool create);
/* The default path of another file (`name`, e.g. "p2p.key") in the data
 * directory (created when `create`). Returns buf. */
const char *pl_cli_default_file(char *buf, size_t cap, const char *name, bool create);
/* For commands that only read a store: 0 when `path` exists, else 1 after
 * saying that there is no store there. */
int pl_cli_store_must_exist(const pl_cli_out *o, const char *path);

/* An advisory lock (flock) on a store file, held by the commands that serve
 * it (wc create, pair, run) so that two of them never share one store.
 * Commands that act once (wc ping, delete, list) take none and may run
 * beside them. */
typedef struct pl_cli_lock {
    int fd; /* -1: none */
} pl_cli_lock;
/* Take it (the store exists: the client opened it). Returns 0, or 1 after
 * naming the process that holds it. ":memory:" needs none. */
int pl_cli_store_lock(pl_cli_lock *l, const pl_cli_out *o, const char *path);
void pl_cli_store_unlock(pl_cli_lock *l);

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
