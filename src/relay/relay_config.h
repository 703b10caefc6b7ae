/* SPDX-License-Identifier: Apache-2.0 */
/* The settings of `pairlink relay`: one table of keys that the command line
 * (--KEY VALUE) and the configuration file (`KEY VALUE` or `KEY = VALUE`
 * per line, mosquitto.conf style) share, their parsing and checks, and
 * which of them a reload (SIGHUP) may change while the relay runs.
 *
 * Layers: defaults, then the file (--config), then the command line, so
 * that a flag given on the command line always wins; a repeatable key
 * (--listen, --allow, ...) given in a later layer replaces the list of the
 * earlier one instead of adding to it. pl__relay_config_finish then checks
 * the keys against each other and reads --allow-file.
 *
 * No I/O but reading the files named (the config file, the allow-list file);
 * no clock. Not thread-safe (one config per thread). Private to the library;
 * the keys are documented in docs/relay.md and pairlink-relay(8). */
#ifndef PAIRLINK_RELAY_CONFIG_H
#define PAIRLINK_RELAY_CONFIG_H

#include "pairlink/log.h"
#include "relay/auth.h"
#include "relay/relay_core.h"

#include <stdbool.h>
#include <stddef.h>

#define PL__RELAY_LISTEN_MAX 8
#define PL__RELAY_ALLOWANCE_MAX 64
#define PL__RELAY_ALLOW_MAX 65536          /* client keys in the allow-list (--allow + file) */
#define PL__RELAY_PATH_MAX 1024            /* a file name in the settings */
#define PL__RELAY_CONF_LINE_MAX 4096       /* one line of a config or allow-list file */
#define PL__RELAY_CONF_FILE_MAX (4u << 20) /* a config or allow-list file */

/* /health and /metrics: served to everyone, to loopback clients only, or not. */
typedef enum pl__relay_http_access {
    PL__RELAY_HTTP_ON = 0,
    PL__RELAY_HTTP_LOOPBACK = 1,
    PL__RELAY_HTTP_OFF = 2,
} pl__relay_http_access;

typedef struct pl__relay_listen {
    char host[256]; /* an IPv4 address or name, or an IPv6 address (no brackets) */
    int port;
    bool ipv6; /* given in brackets: [::1]:8787 */
} pl__relay_listen;

typedef struct pl__relay_config {
    pl__relay_listen listen[PL__RELAY_LISTEN_MAX];
    size_t nlisten;              /* 0 after finish: never (127.0.0.1:8787 is filled in) */
    char db[PL__RELAY_PATH_MAX]; /* "" : in memory */
    /* --cluster (nats://...; "": none), --cluster-replicas (0: default),
     * --instance-id ("": HOST-PID): relay_backend.h. */
    char cluster[PL__RELAY_PATH_MAX];
    int cluster_replicas;
    char instance_id[64];
    /* --cluster-ca (PEM CAs the NATS servers' certificates are checked
     * against: TLS), --cluster-cert/--cluster-key (a client certificate
     * for servers that ask for one); "": none. */
    char cluster_ca[PL__RELAY_PATH_MAX], cluster_cert[PL__RELAY_PATH_MAX],
        cluster_key[PL__RELAY_PATH_MAX];
    bool require_auth;
    char public_url[PL__RELAY_AUD_MAX][PL_JWT_AUD_MAX];
    size_t npublic_url;
    int ping_interval_ms, idle_timeout_ms, handshake_timeout_s, socket_sndbuf; /* 0: default */
    /* Zero fields: the core's defaults. limits.allowances is NULL here:
     * pl__relay_config_limits() points it at allowances[]. */
    pl__relay_limits limits;
    pl__relay_allowance allowances[PL__RELAY_ALLOWANCE_MAX];
    size_t nallowances;
    size_t max_memory; /* 0: PL_RELAY_DEF_MEMORY */
    char tls_cert[PL__RELAY_PATH_MAX], tls_key[PL__RELAY_PATH_MAX];
    int fault_close_code;
    bool fault_ignore;
    pl_log_level log_level;
    pl_log_format log_format;
    pl__relay_http_access health, metrics;
    /* The allow-list (after finish): the --allow keys and those of
     * --allow-file, sorted, without duplicates. */
    char (*allow)[PL_DID_KEY_SIZE];
    size_t nallow, allowcap;
    char (*allow_keys)[PL_DID_KEY_SIZE]; /* the --allow keys as given */
    size_t nallow_keys, keyscap;
    char allow_file[PL__RELAY_PATH_MAX];
    /* Internal: which repeatable keys the current layer has set. */
    uint64_t layer_seen;
} pl__relay_config;

/* The keys. */
size_t pl__relay_config_nkeys(void);
const char *pl__relay_config_key_name(size_t key);
bool pl__relay_config_key_has_arg(size_t key); /* false: a flag (require-auth, verbose) */
/* The key's index, or -1 (unknown). */
int pl__relay_config_key_find(const char *name);

/* Defaults. Free with pl__relay_config_free (NULL ok). */
void pl__relay_config_init(pl__relay_config *c);
void pl__relay_config_free(pl__relay_config *c);

/* A new layer starts (the file, then the command line): the first value of
 * a repeatable key in it replaces the list. */
void pl__relay_config_layer(pl__relay_config *c);

/* Set one key. value: the argument (NULL for a flag on the command line;
 * in a file a flag may say true/false, yes/no, on/off, 1/0). On error, why
 * holds a sentence without the key's name ("wants 1..3600 seconds").
 * Errors: PL_ERR_CONFIG_VALUE, PL_ERR_NOMEM. */
pl_err pl__relay_config_set(pl__relay_config *c, size_t key, const char *value, char *why,
                            size_t whysz);

/* Read a config file into c (a new layer). On error why holds
 * "PATH:LINE: ..." (or "PATH: ..." when the file cannot be read).
 * Errors: PL_ERR_CONFIG_KEY (unknown key, or `config` inside a file),
 * PL_ERR_CONFIG_VALUE, PL_ERR_TOO_LARGE (a line or the file over its bound),
 * PL_ERR_IO (cannot open or read: pl_last_detail() has the errno),
 * PL_ERR_NOMEM. */
pl_err pl__relay_config_load(pl__relay_config *c, const char *path, char *why, size_t whysz);

/* The same from text in memory (len bytes, not NUL-terminated); name
 * stands for the file in messages. Errors: those of load but PL_ERR_IO. */
pl_err pl__relay_config_load_text(pl__relay_config *c, const char *name, const char *text,
                                  size_t len, char *why, size_t whysz);

/* Checks across keys, the default listener, and the allow-list file (read
 * now: one did:key per line, `#` comments). why as above. Errors:
 * PL_ERR_CONFIG_VALUE, PL_ERR_TOO_LARGE, PL_ERR_IO, PL_ERR_NOMEM. */
pl_err pl__relay_config_finish(pl__relay_config *c, char *why, size_t whysz);

/* The core's limits of c, allowances included (pointing into c). */
void pl__relay_config_limits(const pl__relay_config *c, pl__relay_limits *out);

/* Whether a binary search finds did in the allow-list (after finish). */
bool pl__relay_config_allowed(const pl__relay_config *c, const char *did);

/* Compare a running config with a newly read one: the names of the keys
 * that differ and may change live go to `live`, those that need a restart
 * to `restart` (space-separated, "" for none; cut at the buffer's size).
 * Returns the number of keys that differ. */
size_t pl__relay_config_diff(const pl__relay_config *old, const pl__relay_config *neu, char *live,
                             size_t livesz, char *restart, size_t restartsz);

/* After a reload: the keys that need a restart keep their running values
 * (from old) in neu, so that neu says what the relay really runs. */
void pl__relay_config_keep_restart(pl__relay_config *neu, const pl__relay_config *old);

/* Move src into dst (dst freed first); src is left empty (initialised). */
void pl__relay_config_move(pl__relay_config *dst, pl__relay_config *src);

#endif
