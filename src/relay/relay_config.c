/* SPDX-License-Identifier: Apache-2.0 */
/* Settings of `pairlink relay`: see relay_config.h. */
#include "relay/relay_config.h"

#include "core/internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the key table ---------------------------------------------------------------- */

enum {
    K_LISTEN,
    K_DB,
    K_REQUIRE_AUTH,
    K_PUBLIC_URL,
    K_PING,
    K_IDLE,
    K_MAILBOX,
    K_MAXMSG,
    K_RATE,
    K_ALLOWANCE,
    K_TOPICS,
    K_MEMORY,
    K_STORED,
    K_MESSAGES,
    K_TOPICS_TOTAL,
    K_QUOTA_MESSAGES,
    K_QUOTA_BYTES,
    K_QUOTA_TOPICS,
    K_CONNS,
    K_CONNS_PER_ADDR,
    K_INFLIGHT_BYTES,
    K_QUEUE,
    K_FETCH_PAGE,
    K_HANDSHAKE,
    K_SNDBUF,
    K_TLS_CERT,
    K_TLS_KEY,
    K_FAULT,
    K_VERBOSE,
    K_LOG_LEVEL,
    K_LOG_FORMAT,
    K_ALLOW,
    K_ALLOW_FILE,
    K_HEALTH,
    K_METRICS,
    K_CLUSTER,
    K_CLUSTER_REPLICAS,
    K_INSTANCE_ID,
    K_CLUSTER_CA,
    K_CLUSTER_CERT,
    K_CLUSTER_KEY,
    K_COUNT
};

typedef struct keydef {
    const char *name;
    bool arg;        /* takes a value (else a flag) */
    bool live;       /* a reload applies it while the relay runs */
    bool repeatable; /* a list: each occurrence adds */
} keydef;

static const keydef keys[K_COUNT] = {
    [K_LISTEN] = {"listen", true, false, true},
    [K_DB] = {"db", true, false, false},
    [K_REQUIRE_AUTH] = {"require-auth", false, true, false},
    [K_PUBLIC_URL] = {"public-url", true, false, true},
    [K_PING] = {"ping-interval", true, false, false},
    [K_IDLE] = {"idle-timeout", true, false, false},
    [K_MAILBOX] = {"mailbox-limit", true, true, false},
    [K_MAXMSG] = {"max-message", true, true, false},
    [K_RATE] = {"rate-limit", true, true, false},
    [K_ALLOWANCE] = {"allowance", true, true, true},
    [K_TOPICS] = {"max-topics", true, true, false},
    [K_MEMORY] = {"max-memory", true, true, false},
    [K_STORED] = {"max-stored", true, true, false},
    [K_MESSAGES] = {"max-messages", true, true, false},
    [K_TOPICS_TOTAL] = {"max-topics-total", true, true, false},
    [K_QUOTA_MESSAGES] = {"quota-messages", true, true, false},
    [K_QUOTA_BYTES] = {"quota-bytes", true, true, false},
    [K_QUOTA_TOPICS] = {"quota-topics", true, true, false},
    [K_CONNS] = {"max-conns", true, true, false},
    [K_CONNS_PER_ADDR] = {"max-conns-per-addr", true, true, false},
    [K_INFLIGHT_BYTES] = {"max-inflight-bytes", true, true, false},
    [K_QUEUE] = {"max-queue", true, true, false},
    [K_FETCH_PAGE] = {"fetch-page", true, true, false},
    [K_HANDSHAKE] = {"handshake-timeout", true, false, false},
    [K_SNDBUF] = {"socket-sndbuf", true, false, false},
    [K_TLS_CERT] = {"tls-cert", true, false, false},
    [K_TLS_KEY] = {"tls-key", true, false, false},
    [K_FAULT] = {"fault", true, false, false},
    [K_VERBOSE] = {"verbose", false, true, false},
    [K_LOG_LEVEL] = {"log-level", true, true, false},
    [K_LOG_FORMAT] = {"log-format", true, true, false},
    [K_ALLOW] = {"allow", true, true, true},
    [K_ALLOW_FILE] = {"allow-file", true, true, false},
    [K_HEALTH] = {"health", true, true, false},
    [K_METRICS] = {"metrics", true, true, false},
    [K_CLUSTER] = {"cluster", true, false, false},
    [K_CLUSTER_REPLICAS] = {"cluster-replicas", true, false, false},
    [K_INSTANCE_ID] = {"instance-id", true, false, false},
    [K_CLUSTER_CA] = {"cluster-ca", true, false, false},
    [K_CLUSTER_CERT] = {"cluster-cert", true, false, false},
    [K_CLUSTER_KEY] = {"cluster-key", true, false, false},
};

size_t pl__relay_config_nkeys(void) {
    return K_COUNT;
}

const char *pl__relay_config_key_name(size_t key) {
    PL_REQUIRE(key < K_COUNT);
    return keys[key].name;
}

bool pl__relay_config_key_has_arg(size_t key) {
    PL_REQUIRE(key < K_COUNT);
    return keys[key].arg;
}

int pl__relay_config_key_find(const char *name) {
    PL_REQUIRE(name);
    for (int i = 0; i < K_COUNT; i++)
        if (!strcmp(keys[i].name, name)) return i;
    return -1;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

void pl__relay_config_init(pl__relay_config *c) {
    PL_REQUIRE(c);
    memset(c, 0, sizeof *c);
    c->log_level = PL_LOG_INFO;
}

void pl__relay_config_free(pl__relay_config *c) {
    if (!c) return;
    free(c->allow);
    free(c->allow_keys);
    pl__relay_config_init(c);
}

void pl__relay_config_move(pl__relay_config *dst, pl__relay_config *src) {
    PL_REQUIRE(dst && src);
    pl__relay_config_free(dst);
    *dst = *src;
    src->allow = NULL;
    src->allow_keys = NULL;
    pl__relay_config_init(src);
}

void pl__relay_config_layer(pl__relay_config *c) {
    PL_REQUIRE(c);
    c->layer_seen = 0;
}

/* ---- values --------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static pl_err bad(char *why, size_t whysz, const char *fmt,
                                                        ...) {
    if (why && whysz) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, whysz, fmt, ap);
        va_end(ap);
    }
    return PL_ERR_CONFIG_VALUE;
}

static bool parse_ulong(const char *s, unsigned long max, unsigned long *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s)) return false;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || v > max) return false;
    *out = v;
    return true;
}

/* A byte count, with an optional K, M or G (powers of 1024); 1..max. */
static bool parse_bytes(const char *s, unsigned long long max, size_t *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s)) return false;
    unsigned long long v = strtoull(s, &end, 10), mul = 1;
    if (*end == 'K' || *end == 'k')
        mul = 1ull << 10;
    else if (*end == 'M' || *end == 'm')
        mul = 1ull << 20;
    else if (*end == 'G' || *end == 'g')
        mul = 1ull << 30;
    if (mul != 1) end++;
    if (errno || *end || v == 0 || v > max / mul) return false;
    *out = (size_t)(v * mul);
    return true;
}

/* A --cluster list: each element nats:// or tls:// and something after
 * it. (The value is never echoed back: it may hold a password.) */
static bool cluster_urls_ok(const char *v) {
    for (const char *p = v;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        size_t scheme = !strncmp(p, "nats://", 7) ? 7 : !strncmp(p, "tls://", 6) ? 6 : 0;
        if (!scheme || len <= scheme) return false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p[i] <= ' ') return false;
        if (!e) return true;
        p = e + 1;
    }
}

/* "HOST:PORT" or "[IPV6]:PORT". */
static bool parse_listen(const char *arg, pl__relay_listen *out) {
    unsigned long p;
    const char *colon;
    memset(out, 0, sizeof *out);
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (!close || close[1] != ':' || close == arg + 1 ||
            (size_t)(close - arg - 1) >= sizeof out->host)
            return false;
        memcpy(out->host, arg + 1, (size_t)(close - arg - 1));
        out->ipv6 = true;
        colon = close + 1;
        if (strchr(out->host, '[') || strchr(out->host, ']')) return false;
    } else {
        colon = strrchr(arg, ':');
        if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof out->host) return false;
        memcpy(out->host, arg, (size_t)(colon - arg));
        if (strchr(out->host, ':')) return false; /* IPv6 wants brackets */
    }
    if (!parse_ulong(colon + 1, 65535, &p)) return false;
    out->port = (int)p;
    return true;
}

static bool parse_flag(const char *v, bool *out) {
    if (!v || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1")) {
        *out = true;
        return true;
    }
    if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0")) {
        *out = false;
        return true;
    }
    return false;
}

/* did:key:z + base58btc of an Ed25519 multikey: the shape only; a JWT's
 * iss is checked for real when it is verified. */
static bool is_did_key(const char *s) {
    size_t n = strlen(s);
    if (n < 9 + 40 || n >= PL_DID_KEY_SIZE || strncmp(s, "did:key:z", 9) != 0) return false;
    for (size_t i = 9; i < n; i++)
        if (!strchr("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", s[i]))
            return false;
    return true;
}

static bool copy_path(char *dst, size_t cap, const char *v) {
    size_t n = strlen(v);
    if (!n || n >= cap) return false;
    memcpy(dst, v, n + 1);
    return true;
}

typedef char did_t[PL_DID_KEY_SIZE];

static pl_err did_add(did_t **arr, size_t *n, size_t *cap, const char *did) {
    if (*n == PL__RELAY_ALLOW_MAX) return PL_ERR_TOO_LARGE;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        void *p = realloc(*arr, nc * sizeof **arr);
        if (!p) return PL_ERR_NOMEM;
        *arr = p;
        *cap = nc;
    }
    snprintf((*arr)[(*n)++], PL_DID_KEY_SIZE, "%s", did);
    return PL_OK;
}

static pl_err allow_add(pl__relay_config *c, const char *did) {
    return did_add(&c->allow, &c->nallow, &c->allowcap, did);
}

pl_err pl__relay_config_set(pl__relay_config *c, size_t key, const char *v, char *why,
                            size_t whysz) {
    PL_REQUIRE(c && key < K_COUNT);
    if (why && whysz) why[0] = '\0';
    if (keys[key].arg && (!v || !*v)) return bad(why, whysz, "wants a value");
    if (keys[key].repeatable && !(c->layer_seen & (UINT64_C(1) << key))) {
        /* The first of a list in this layer replaces the earlier layer's. */
        c->layer_seen |= UINT64_C(1) << key;
        switch (key) {
        case K_LISTEN:
            c->nlisten = 0;
            break;
        case K_PUBLIC_URL:
            c->npublic_url = 0;
            break;
        case K_ALLOWANCE:
            c->nallowances = 0;
            break;
        case K_ALLOW:
            c->nallow_keys = 0;
            break;
        default:
            break;
        }
    }
    unsigned long u;
    size_t b;
    pl__relay_limits *l = &c->limits;
    switch (key) {
    case K_LISTEN:
        if (c->nlisten == PL__RELAY_LISTEN_MAX)
            return bad(why, whysz, "at most %d listeners", PL__RELAY_LISTEN_MAX);
        if (!parse_listen(v, &c->listen[c->nlisten]))
            return bad(why, whysz, "wants HOST:PORT or [IPV6]:PORT, got '%s'", v);
        c->nlisten++;
        return PL_OK;
    case K_DB:
        if (!copy_path(c->db, sizeof c->db, v)) return bad(why, whysz, "wants a file name");
        return PL_OK;
    case K_CLUSTER:
        if (!cluster_urls_ok(v) || !copy_path(c->cluster, sizeof c->cluster, v))
            return bad(why, whysz,
                       "wants nats://HOST:PORT or tls://HOST:PORT, comma-separated (a user and "
                       "password as USER:PASS@HOST:PORT)");
        return PL_OK;
    case K_CLUSTER_CA:
    case K_CLUSTER_CERT:
    case K_CLUSTER_KEY: {
        char *dst = key == K_CLUSTER_CA     ? c->cluster_ca
                    : key == K_CLUSTER_CERT ? c->cluster_cert
                                            : c->cluster_key;
        if (!copy_path(dst, PL__RELAY_PATH_MAX, v)) return bad(why, whysz, "wants a file name");
        return PL_OK;
    }
    case K_CLUSTER_REPLICAS:
        if (!parse_ulong(v, 5, &u) || u == 0) return bad(why, whysz, "wants 1..5");
        c->cluster_replicas = (int)u;
        return PL_OK;
    case K_INSTANCE_ID:
        if (!*v || strlen(v) >= sizeof c->instance_id || strpbrk(v, " .*>\t"))
            return bad(why, whysz, "wants 1..63 characters, no space, '.', '*' or '>'");
        memcpy(c->instance_id, v, strlen(v) + 1);
        return PL_OK;
    case K_REQUIRE_AUTH:
    case K_VERBOSE: {
        bool f;
        if (!parse_flag(v, &f)) return bad(why, whysz, "wants true or false, got '%s'", v);
        if (key == K_REQUIRE_AUTH)
            c->require_auth = f;
        else
            c->log_level = f ? PL_LOG_DEBUG : PL_LOG_INFO;
        return PL_OK;
    }
    case K_PUBLIC_URL: {
        pl__relay_audience probe;
        memset(&probe, 0, sizeof probe);
        if (c->npublic_url == PL__RELAY_AUD_MAX)
            return bad(why, whysz, "at most %d public URLs", PL__RELAY_AUD_MAX);
        if (pl__relay_audience_add(&probe, v) != PL_OK)
            return bad(why, whysz, "wants ws:// or wss://HOST[:PORT][/PATH] (no query), got '%s'",
                       v);
        snprintf(c->public_url[c->npublic_url++], PL_JWT_AUD_MAX, "%s", v);
        return PL_OK;
    }
    case K_PING:
    case K_IDLE:
    case K_HANDSHAKE: {
        unsigned long max = key == K_IDLE ? 86400 : 3600;
        if (!parse_ulong(v, max, &u) || u == 0)
            return bad(why, whysz, "wants 1..%lu seconds, got '%s'", max, v);
        if (key == K_PING)
            c->ping_interval_ms = (int)u * 1000;
        else if (key == K_IDLE)
            c->idle_timeout_ms = (int)u * 1000;
        else
            c->handshake_timeout_s = (int)u;
        return PL_OK;
    }
    case K_TOPICS:
        if (!parse_ulong(v, 1000000, &u) || u == 0) return bad(why, whysz, "wants 1..1000000");
        l->max_topics_per_conn = u;
        return PL_OK;
    case K_MAILBOX:
        if (!parse_ulong(v, 10000000, &u) || u == 0) return bad(why, whysz, "wants 1..10000000");
        l->max_mailbox_per_topic = u;
        return PL_OK;
    case K_MAXMSG:
        if (!parse_ulong(v, PL_RELAY_DEF_MAX_FRAME - 4096, &u) || u == 0)
            return bad(why, whysz, "wants 1..%u bytes", PL_RELAY_DEF_MAX_FRAME - 4096);
        l->max_message_bytes = u;
        return PL_OK;
    case K_RATE:
        if (!parse_ulong(v, 1000000, &u)) return bad(why, whysz, "wants 0..1000000");
        l->rate_unlimited = u == 0;
        l->rate_per_s = (uint32_t)u;
        l->rate_burst = (uint32_t)(u * 5);
        return PL_OK;
    case K_ALLOWANCE: {
        const char *eq = strrchr(v, '=');
        char did[PL_DID_KEY_SIZE];
        if (!eq || (size_t)(eq - v) >= sizeof did || !parse_ulong(eq + 1, 1000000, &u) || u == 0)
            return bad(why, whysz, "wants did:key:...=N (1..1000000)");
        memcpy(did, v, (size_t)(eq - v));
        did[eq - v] = '\0';
        if (!is_did_key(did)) return bad(why, whysz, "wants did:key:...=N (1..1000000)");
        if (c->nallowances == PL__RELAY_ALLOWANCE_MAX)
            return bad(why, whysz, "at most %d allowances", PL__RELAY_ALLOWANCE_MAX);
        pl__relay_allowance *a = &c->allowances[c->nallowances++];
        memcpy(a->did, did, sizeof did);
        a->rate_per_s = (uint32_t)u;
        a->burst = (uint32_t)(u * 5);
        return PL_OK;
    }
    case K_MEMORY:
    case K_STORED:
    case K_QUOTA_BYTES:
    case K_INFLIGHT_BYTES:
    case K_QUEUE:
    case K_FETCH_PAGE: {
        if (!parse_bytes(v, 1ull << 40, &b))
            return bad(why, whysz, "wants a byte count (K, M, G allowed), got '%s'", v);
        size_t *f = key == K_MEMORY           ? &c->max_memory
                    : key == K_STORED         ? &l->max_total_bytes
                    : key == K_QUOTA_BYTES    ? &l->quota_bytes
                    : key == K_INFLIGHT_BYTES ? &l->max_inflight_bytes_per_conn
                    : key == K_QUEUE          ? &l->max_queue_bytes_per_conn
                                              : &l->fetch_page_bytes;
        *f = b;
        return PL_OK;
    }
    case K_MESSAGES:
    case K_TOPICS_TOTAL:
    case K_QUOTA_MESSAGES:
    case K_QUOTA_TOPICS:
    case K_CONNS:
    case K_CONNS_PER_ADDR: {
        if (!parse_ulong(v, 100000000, &u) || u == 0)
            return bad(why, whysz, "wants 1..100000000, got '%s'", v);
        size_t *f = key == K_MESSAGES         ? &l->max_messages
                    : key == K_TOPICS_TOTAL   ? &l->max_topics
                    : key == K_QUOTA_MESSAGES ? &l->quota_messages
                    : key == K_QUOTA_TOPICS   ? &l->quota_topics
                    : key == K_CONNS          ? &l->max_conns
                                              : &l->max_conns_per_addr;
        *f = u;
        return PL_OK;
    }
    case K_SNDBUF:
        if (!parse_bytes(v, 1ull << 30, &b))
            return bad(why, whysz, "wants a byte count (K, M allowed)");
        c->socket_sndbuf = (int)b;
        return PL_OK;
    case K_TLS_CERT:
    case K_TLS_KEY:
        if (!copy_path(key == K_TLS_CERT ? c->tls_cert : c->tls_key, PL__RELAY_PATH_MAX, v))
            return bad(why, whysz, "wants a file name");
        return PL_OK;
    case K_FAULT:
        if (!strcmp(v, "ignore")) {
            c->fault_ignore = true;
        } else if (!strncmp(v, "close=", 6) && parse_ulong(v + 6, 4999, &u) && u >= 1000) {
            c->fault_close_code = (int)u;
        } else {
            return bad(why, whysz, "wants close=CODE (1000..4999) or ignore");
        }
        return PL_OK;
    case K_LOG_LEVEL:
        for (pl_log_level lv = PL_LOG_ERROR; lv <= PL_LOG_DEBUG; lv++) {
            if (!strcmp(v, pl_log_level_name(lv))) {
                c->log_level = lv;
                return PL_OK;
            }
        }
        return bad(why, whysz, "wants error, warn, info or debug, got '%s'", v);
    case K_LOG_FORMAT:
        if (!strcmp(v, "text"))
            c->log_format = PL_LOG_FORMAT_TEXT;
        else if (!strcmp(v, "json"))
            c->log_format = PL_LOG_FORMAT_JSON;
        else
            return bad(why, whysz, "wants text or json, got '%s'", v);
        return PL_OK;
    case K_ALLOW: {
        if (!is_did_key(v))
            return bad(why, whysz, "wants a did:key:z... client key, got '%.80s'", v);
        pl_err e = did_add(&c->allow_keys, &c->nallow_keys, &c->keyscap, v);
        if (e == PL_ERR_TOO_LARGE) return bad(why, whysz, "at most %d keys", PL__RELAY_ALLOW_MAX);
        return e;
    }
    case K_ALLOW_FILE:
        if (!copy_path(c->allow_file, sizeof c->allow_file, v))
            return bad(why, whysz, "wants a file name");
        return PL_OK;
    case K_HEALTH:
    case K_METRICS: {
        pl__relay_http_access a;
        if (!strcmp(v, "on"))
            a = PL__RELAY_HTTP_ON;
        else if (!strcmp(v, "loopback"))
            a = PL__RELAY_HTTP_LOOPBACK;
        else if (!strcmp(v, "off"))
            a = PL__RELAY_HTTP_OFF;
        else
            return bad(why, whysz, "wants on, loopback or off, got '%s'", v);
        if (key == K_HEALTH)
            c->health = a;
        else
            c->metrics = a;
        return PL_OK;
    }
    }
    return bad(why, whysz, "unknown key");
}

/* ---- files ---------------------------------------------------------------------------- */

/* Read a whole (bounded) file; *out NUL-terminated, free() it. */
static pl_err slurp(const char *path, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return pl__fail(PL_ERR_IO, errno);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return PL_ERR_NOMEM;
    }
    for (;;) {
        if (n == cap) {
            if (cap >= PL__RELAY_CONF_FILE_MAX) {
                free(buf);
                fclose(f);
                return PL_ERR_TOO_LARGE;
            }
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return PL_ERR_NOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int err = ferror(f) ? errno : 0;
    fclose(f);
    if (err) {
        free(buf);
        return pl__fail(PL_ERR_IO, err);
    }
    if (n > PL__RELAY_CONF_FILE_MAX) {
        free(buf);
        return PL_ERR_TOO_LARGE;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return PL_OK;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Calls fn for each line that is neither blank nor a comment, with its
 * number; stops at the first error. */
typedef pl_err (*line_fn)(void *ud, char *line, size_t lineno, char *why, size_t whysz);

static pl_err each_line_text(const char *path, char *buf, size_t len, line_fn fn, void *ud,
                             char *why, size_t whysz);

static pl_err each_line(const char *path, line_fn fn, void *ud, char *why, size_t whysz) {
    char *buf;
    size_t len;
    pl_err e = slurp(path, &buf, &len);
    if (e == PL_ERR_IO) {
        snprintf(why, whysz, "%s: cannot read: %s", path, strerror((int)pl_last_detail()));
        return e;
    }
    if (e == PL_ERR_TOO_LARGE) {
        snprintf(why, whysz, "%s: larger than %u bytes", path, PL__RELAY_CONF_FILE_MAX);
        return e;
    }
    if (e != PL_OK) return e;
    e = each_line_text(path, buf, len, fn, ud, why, whysz);
    free(buf);
    return e;
}

/* The lines of buf (len bytes, NUL-terminated, modified in place). */
static pl_err each_line_text(const char *path, char *buf, size_t len, line_fn fn, void *ud,
                             char *why, size_t whysz) {
    pl_err e = PL_OK;
    if (memchr(buf, '\0', len)) {
        snprintf(why, whysz, "%s: not a text file (a NUL byte)", path);
        return PL_ERR_CONFIG_VALUE;
    }
    size_t lineno = 0;
    char *p = buf;
    while (*p) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        lineno++;
        if (strlen(p) >= PL__RELAY_CONF_LINE_MAX) {
            snprintf(why, whysz, "%s:%zu: line longer than %d bytes", path, lineno,
                     PL__RELAY_CONF_LINE_MAX - 1);
            e = PL_ERR_TOO_LARGE;
            break;
        }
        char *line = trim(p);
        if (*line && *line != '#') {
            char msg[384];
            msg[0] = '\0';
            if ((e = fn(ud, line, lineno, msg, sizeof msg)) != PL_OK) {
                snprintf(why, whysz, "%s:%zu: %s", path, lineno, msg);
                break;
            }
        }
        if (!nl) break;
        p = nl + 1;
    }
    return e;
}

static pl_err config_line(void *ud, char *line, size_t lineno, char *why, size_t whysz) {
    (void)lineno;
    pl__relay_config *c = ud;
    char *key = line, *val = line + strcspn(line, " \t=");
    bool eq = *val == '=';
    if (*val) *val++ = '\0';
    val = trim(val);
    if (!eq && *val == '=') val = trim(val + 1);
    int k = pl__relay_config_key_find(key);
    if (k < 0) {
        snprintf(why, whysz, "unknown key '%.64s'%s", key,
                 !strncmp(key, "--", 2) ? " (write keys without the leading --)" : "");
        return PL_ERR_CONFIG_KEY;
    }
    if (!keys[k].arg && !*val) val = NULL;
    char msg[320];
    pl_err e = pl__relay_config_set(c, (size_t)k, val, msg, sizeof msg);
    if (e == PL_ERR_CONFIG_VALUE) snprintf(why, whysz, "%s: %s", key, msg);
    return e;
}

pl_err pl__relay_config_load(pl__relay_config *c, const char *path, char *why, size_t whysz) {
    PL_REQUIRE(c && path && why && whysz);
    why[0] = '\0';
    pl__relay_config_layer(c);
    return each_line(path, config_line, c, why, whysz);
}

pl_err pl__relay_config_load_text(pl__relay_config *c, const char *name, const char *text,
                                  size_t len, char *why, size_t whysz) {
    PL_REQUIRE(c && name && (text || !len) && why && whysz);
    why[0] = '\0';
    if (len > PL__RELAY_CONF_FILE_MAX) {
        snprintf(why, whysz, "%s: larger than %u bytes", name, PL__RELAY_CONF_FILE_MAX);
        return PL_ERR_TOO_LARGE;
    }
    char *buf = malloc(len + 1);
    if (!buf) return PL_ERR_NOMEM;
    if (len) memcpy(buf, text, len);
    buf[len] = '\0';
    pl__relay_config_layer(c);
    pl_err e = each_line_text(name, buf, len, config_line, c, why, whysz);
    free(buf);
    return e;
}

static pl_err allow_line(void *ud, char *line, size_t lineno, char *why, size_t whysz) {
    (void)lineno;
    pl__relay_config *c = ud;
    if (!is_did_key(line)) {
        snprintf(why, whysz, "not a did:key:z... client key: '%.80s'", line);
        return PL_ERR_CONFIG_VALUE;
    }
    pl_err e = allow_add(c, line);
    if (e == PL_ERR_TOO_LARGE) snprintf(why, whysz, "more than %d keys", PL__RELAY_ALLOW_MAX);
    return e;
}

static int did_cmp(const void *a, const void *b) {
    return strcmp(a, b);
}

pl_err pl__relay_config_finish(pl__relay_config *c, char *why, size_t whysz) {
    PL_REQUIRE(c && why && whysz);
    why[0] = '\0';
    if (!c->nlisten) {
        snprintf(c->listen[0].host, sizeof c->listen[0].host, "127.0.0.1");
        c->listen[0].port = 8787;
        c->nlisten = 1;
    }
    if (!c->tls_cert[0] != !c->tls_key[0])
        return bad(why, whysz, "tls-cert and tls-key go together");
    if (c->db[0] && c->cluster[0])
        return bad(why, whysz, "db and cluster exclude each other: the cluster is the store");
    if ((c->cluster_replicas || c->instance_id[0] || c->cluster_ca[0] || c->cluster_cert[0]) &&
        !c->cluster[0])
        return bad(why, whysz,
                   "cluster-replicas, instance-id, cluster-ca and cluster-cert need cluster");
    if (!c->cluster_cert[0] != !c->cluster_key[0])
        return bad(why, whysz, "cluster-cert and cluster-key go together");
    c->nallow = 0;
    for (size_t i = 0; i < c->nallow_keys; i++)
        PL_TRY(allow_add(c, c->allow_keys[i]));
    if (c->allow_file[0]) {
        pl_err e = each_line(c->allow_file, allow_line, c, why, whysz);
        if (e != PL_OK) return e;
    }
    if (c->nallow && !c->require_auth)
        return bad(why, whysz,
                   "allow and allow-file need require-auth (an allow-list names the "
                   "keys of authenticated clients)");
    if (c->nallow) {
        qsort(c->allow, c->nallow, sizeof *c->allow, did_cmp);
        size_t w = 1;
        for (size_t i = 1; i < c->nallow; i++)
            if (strcmp(c->allow[i], c->allow[w - 1]) != 0)
                memmove(c->allow[w++], c->allow[i], sizeof *c->allow);
        c->nallow = w;
    }
    return PL_OK;
}

void pl__relay_config_limits(const pl__relay_config *c, pl__relay_limits *out) {
    PL_REQUIRE(c && out);
    *out = c->limits;
    out->allowances = c->nallowances ? c->allowances : NULL;
    out->nallowances = c->nallowances;
}

bool pl__relay_config_allowed(const pl__relay_config *c, const char *did) {
    PL_REQUIRE(c && did);
    return c->nallow && bsearch(did, c->allow, c->nallow, sizeof *c->allow, did_cmp) != NULL;
}

/* ---- reload ------------------------------------------------------------------------------ */

/* Whether key has the same value in a and b. */
static bool same(const pl__relay_config *a, const pl__relay_config *b, size_t key) {
    const pl__relay_limits *x = &a->limits, *y = &b->limits;
    switch (key) {
    case K_LISTEN:
        if (a->nlisten != b->nlisten) return false;
        for (size_t i = 0; i < a->nlisten; i++)
            if (strcmp(a->listen[i].host, b->listen[i].host) ||
                a->listen[i].port != b->listen[i].port || a->listen[i].ipv6 != b->listen[i].ipv6)
                return false;
        return true;
    case K_DB:
        return !strcmp(a->db, b->db);
    case K_REQUIRE_AUTH:
        return a->require_auth == b->require_auth;
    case K_PUBLIC_URL:
        if (a->npublic_url != b->npublic_url) return false;
        for (size_t i = 0; i < a->npublic_url; i++)
            if (strcmp(a->public_url[i], b->public_url[i])) return false;
        return true;
    case K_PING:
        return a->ping_interval_ms == b->ping_interval_ms;
    case K_IDLE:
        return a->idle_timeout_ms == b->idle_timeout_ms;
    case K_HANDSHAKE:
        return a->handshake_timeout_s == b->handshake_timeout_s;
    case K_SNDBUF:
        return a->socket_sndbuf == b->socket_sndbuf;
    case K_MAILBOX:
        return x->max_mailbox_per_topic == y->max_mailbox_per_topic;
    case K_MAXMSG:
        return x->max_message_bytes == y->max_message_bytes;
    case K_RATE:
        return x->rate_per_s == y->rate_per_s && x->rate_unlimited == y->rate_unlimited;
    case K_ALLOWANCE:
        return a->nallowances == b->nallowances &&
               !memcmp(a->allowances, b->allowances, a->nallowances * sizeof *a->allowances);
    case K_TOPICS:
        return x->max_topics_per_conn == y->max_topics_per_conn;
    case K_MEMORY:
        return a->max_memory == b->max_memory;
    case K_STORED:
        return x->max_total_bytes == y->max_total_bytes;
    case K_MESSAGES:
        return x->max_messages == y->max_messages;
    case K_TOPICS_TOTAL:
        return x->max_topics == y->max_topics;
    case K_QUOTA_MESSAGES:
        return x->quota_messages == y->quota_messages;
    case K_QUOTA_BYTES:
        return x->quota_bytes == y->quota_bytes;
    case K_QUOTA_TOPICS:
        return x->quota_topics == y->quota_topics;
    case K_CONNS:
        return x->max_conns == y->max_conns;
    case K_CONNS_PER_ADDR:
        return x->max_conns_per_addr == y->max_conns_per_addr;
    case K_INFLIGHT_BYTES:
        return x->max_inflight_bytes_per_conn == y->max_inflight_bytes_per_conn;
    case K_QUEUE:
        return x->max_queue_bytes_per_conn == y->max_queue_bytes_per_conn;
    case K_FETCH_PAGE:
        return x->fetch_page_bytes == y->fetch_page_bytes;
    case K_TLS_CERT:
        return !strcmp(a->tls_cert, b->tls_cert);
    case K_TLS_KEY:
        return !strcmp(a->tls_key, b->tls_key);
    case K_FAULT:
        return a->fault_close_code == b->fault_close_code && a->fault_ignore == b->fault_ignore;
    case K_VERBOSE:
        return true; /* reported as log-level */
    case K_LOG_LEVEL:
        return a->log_level == b->log_level;
    case K_LOG_FORMAT:
        return a->log_format == b->log_format;
    case K_ALLOW:
        /* the whole list (with the file's keys): one name for it */
        if (a->nallow != b->nallow) return false;
        for (size_t i = 0; i < a->nallow; i++)
            if (strcmp(a->allow[i], b->allow[i])) return false;
        return true;
    case K_ALLOW_FILE:
        return !strcmp(a->allow_file, b->allow_file);
    case K_HEALTH:
        return a->health == b->health;
    case K_METRICS:
        return a->metrics == b->metrics;
    case K_CLUSTER:
        return !strcmp(a->cluster, b->cluster);
    case K_CLUSTER_REPLICAS:
        return a->cluster_replicas == b->cluster_replicas;
    case K_INSTANCE_ID:
        return !strcmp(a->instance_id, b->instance_id);
    case K_CLUSTER_CA:
        return !strcmp(a->cluster_ca, b->cluster_ca);
    case K_CLUSTER_CERT:
        return !strcmp(a->cluster_cert, b->cluster_cert);
    case K_CLUSTER_KEY:
        return !strcmp(a->cluster_key, b->cluster_key);
    }
    return true;
}

static void append(char *buf, size_t cap, const char *word) {
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s%s", n ? " " : "", word);
}

size_t pl__relay_config_diff(const pl__relay_config *old, const pl__relay_config *neu, char *live,
                             size_t livesz, char *restart, size_t restartsz) {
    PL_REQUIRE(old && neu && live && livesz && restart && restartsz);
    live[0] = restart[0] = '\0';
    size_t n = 0;
    for (size_t k = 0; k < K_COUNT; k++) {
        if (same(old, neu, k)) continue;
        n++;
        if (keys[k].live)
            append(live, livesz, keys[k].name);
        else
            append(restart, restartsz, keys[k].name);
    }
    return n;
}

void pl__relay_config_keep_restart(pl__relay_config *neu, const pl__relay_config *old) {
    PL_REQUIRE(neu && old);
    memcpy(neu->listen, old->listen, sizeof old->listen);
    neu->nlisten = old->nlisten;
    memcpy(neu->db, old->db, sizeof old->db);
    memcpy(neu->cluster, old->cluster, sizeof old->cluster);
    neu->cluster_replicas = old->cluster_replicas;
    memcpy(neu->instance_id, old->instance_id, sizeof old->instance_id);
    memcpy(neu->cluster_ca, old->cluster_ca, sizeof old->cluster_ca);
    memcpy(neu->cluster_cert, old->cluster_cert, sizeof old->cluster_cert);
    memcpy(neu->cluster_key, old->cluster_key, sizeof old->cluster_key);
    memcpy(neu->public_url, old->public_url, sizeof old->public_url);
    neu->npublic_url = old->npublic_url;
    neu->ping_interval_ms = old->ping_interval_ms;
    neu->idle_timeout_ms = old->idle_timeout_ms;
    neu->handshake_timeout_s = old->handshake_timeout_s;
    neu->socket_sndbuf = old->socket_sndbuf;
    memcpy(neu->tls_cert, old->tls_cert, sizeof old->tls_cert);
    memcpy(neu->tls_key, old->tls_key, sizeof old->tls_key);
    neu->fault_close_code = old->fault_close_code;
    neu->fault_ignore = old->fault_ignore;
}
