/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the WalletConnect relay client core
 * (src/transport/wc_relay/client_core.h) fed a script of relay frames,
 * connection events, operations and time.
 *
 * Input: records of a control byte, a 16-bit big-endian length and that
 * many bytes of data (fewer at the end). Control byte:
 *   bits 0-3  op: 0 a text frame from the relay (final); 1 a fragment;
 *             2 a binary frame; 3 the connection opens; 4 the attempt
 *             fails (data[0..1]: HTTP status, the rest: reason text);
 *             5 the open connection closes (data[0..1]: close code);
 *             6 the connection vanishes; 7 a pong; 8 publish data on a
 *             topic; 9 subscribe; 10 unsubscribe; 11 answer the latest
 *             request sent (data[0]: true, a subscription id, an array of
 *             ids, 3001, another error); 12 a push of data as the message on
 *             a subscribed topic (base64 of it, or the raw text when
 *             data[0] is odd); 13 close the client; 14, 15 nothing;
 *   bits 4-5  topic: a 64-hex topic, a content topic, another content
 *             topic, or the data itself as a name;
 *   bits 6-7  time advance before the record: 0, 100 ms, 5 s, 60 s.
 * After every record the timer runs when due and every output is taken.
 *
 * Checks, besides "no crash, no leak, no UB, no hang":
 *  - CONNECT comes only when no connection is asked for or open, its path
 *    starts with the URL's path and carries auth=, ua= and
 *    useOnCloseEvent=true; SEND is valid JSON-RPC 2.0 (one message);
 *  - MESSAGE names a topic we are subscribed to, by the name we gave, with
 *    either bytes or an error (PL_ERR_BAD_BASE64);
 *  - every RESULT of a publish names a seq that was given and not yet
 *    reported, once; pending() equals the publishes not yet reported;
 *  - after close(), only PL_ERR_CANCELLED results, one per publish still
 *    pending, and nothing else ever again;
 *  - after on_timer(now) the next deadline is later than now.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR, the initializer writes a few scripts of
 * real runs to DIR. */
#include "pairlink/codec.h"
#include "pairlink/jsonrpc.h"
#include "transport/wc_relay/client_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 INT64_C(1700000000000)
#define MAXSEQ 256

static const int64_t advance[4] = {0, 100, 5000, 60000};
static const uint8_t seed32[32] = {9, 8, 7};
static const char *const names[3] = {
    "abababababababababababababababababababababababababababababababab",
    "/pairlink/1/rv-00000000000000000000000000000000/proto",
    "/pairlink/1/pair-11111111111111111111111111111111/proto",
};

static void check(int cond) {
    if (!cond) abort();
}

typedef struct world {
    pl__rc *c;
    int64_t now;
    bool connecting, open, closed;
    char subs[8][PL_TRANSPORT_TOPIC_MAX + 1];
    size_t nsubs;
    bool reported[MAXSEQ + 1];
    uint64_t seqs, unreported;
    int64_t last_req;
    bool have_req;
} world;

static uint64_t rng_state;

static void rng(void *ctx, uint8_t *buf, size_t len) {
    uint64_t *s = ctx;
    for (size_t i = 0; i < len; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        buf[i] = (uint8_t)(*s >> 56);
    }
}

static bool subscribed(const world *w, const char *name) {
    for (size_t i = 0; i < w->nsubs; i++)
        if (!strcmp(w->subs[i], name)) return true;
    return false;
}

static void take(world *w) {
    pl__rc_output o;
    while (pl__rc_poll(w->c, &o)) {
        if (w->closed) check(o.kind == PL__RC_RESULT && o.err == PL_ERR_CANCELLED);
        switch (o.kind) {
        case PL__RC_CONNECT:
            check(!w->connecting && !w->open);
            check(o.text && !strncmp(o.text, "/?auth=", 7) && strstr(o.text, "&ua=") &&
                  strstr(o.text, "&useOnCloseEvent=true"));
            w->connecting = true;
            break;
        case PL__RC_SEND: {
            check(w->open && o.text && strlen(o.text) == o.len);
            pl_rpc_msg *m = NULL;
            size_t n = 0;
            bool batch;
            check(pl_rpc_decode(&m, &n, &batch, o.text, o.len) == PL_OK && n == 1 && !batch);
            if (m->kind == PL_RPC_REQUEST && m->id.kind == PL_RPC_ID_NUM) {
                w->last_req = m->id.num;
                w->have_req = true;
            }
            pl_rpc_msgs_free(m, n);
            break;
        }
        case PL__RC_PING:
            check(w->open);
            break;
        case PL__RC_DROP:
            w->connecting = w->open = false;
            break;
        case PL__RC_STATE:
            if (o.state != PL_TRANSPORT_CONNECTED) w->connecting = w->open = false;
            check(o.state == PL_TRANSPORT_CONNECTED ? o.err == PL_OK : o.err != PL_OK);
            break;
        case PL__RC_MESSAGE:
            check(subscribed(w, o.topic));
            check(o.err == PL_OK ? (o.data != NULL || o.data_len == 0)
                                 : o.err == PL_ERR_BAD_BASE64);
            break;
        case PL__RC_RESULT:
            if (o.op == PL_RELAY_OP_PUBLISH) {
                check(o.seq >= 1 && o.seq <= w->seqs && o.seq <= MAXSEQ && !w->reported[o.seq]);
                w->reported[o.seq] = true;
                w->unreported--;
            } else {
                check(o.seq == 0 && o.err == PL_ERR_RELAY);
            }
            break;
        }
        pl__rc_output_clear(&o);
    }
    check(pl__rc_pending(w->c) == (w->closed ? 0 : w->unreported) || w->closed);
}

static void timers(world *w) {
    if (pl__rc_next_deadline(w->c) <= w->now) {
        pl__rc_on_timer(w->c, w->now);
        check(pl__rc_next_deadline(w->c) > w->now);
    }
    take(w);
}

static void name_of(char *out, const uint8_t *d, size_t n, int sel) {
    if (sel < 3) {
        snprintf(out, PL_TRANSPORT_TOPIC_MAX + 1, "%s", names[sel]);
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && k < 40; i++)
        if (d[i] > 0x20 && d[i] < 0x7f) out[k++] = (char)d[i];
    if (!k) out[k++] = 'x';
    out[k] = 0;
}

static void answer(world *w, const uint8_t *d, size_t n) {
    if (!w->have_req) return;
    char buf[512];
    int kind = n ? d[0] % 5 : 0;
    static const char *const results[] = {"true", "\"sub-1\"", "[\"s1\",\"s2\",3]"};
    if (kind < 3)
        snprintf(buf, sizeof buf, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":%s}",
                 (long long)w->last_req, results[kind]);
    else
        snprintf(buf, sizeof buf,
                 "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"error\":{\"code\":%d,\"message\":\"x\"}}",
                 (long long)w->last_req, kind == 3 ? PL_RELAY_CODE_RATE : -32000);
    pl__rc_on_data(w->c, buf, strlen(buf), false, true, w->now);
}

static void push(world *w, const char *name, const uint8_t *d, size_t n) {
    char topic[PL_TOPIC_HEX_SIZE];
    check(pl_relay_topic(topic, name) == PL_OK);
    size_t cap = pl_base64_encoded_size(n, PL_B64_STD) + 256;
    char *msg = malloc(cap + 512);
    check(msg != NULL);
    char *b64 = malloc(cap);
    check(b64 != NULL);
    if (n && (d[0] & 1)) {
        size_t k = 0;
        for (size_t i = 0; i < n && k < cap - 1; i++)
            if (d[i] > 0x20 && d[i] < 0x7f && d[i] != '"' && d[i] != '\\') b64[k++] = (char)d[i];
        b64[k] = 0;
    } else {
        check(pl_base64_encode(b64, cap, d, n, PL_B64_STD) == PL_OK);
    }
    snprintf(msg, cap + 512,
             "{\"id\":7,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscription\",\"params\":{\"data\":"
             "{\"topic\":\"%s\",\"message\":\"%s\",\"tag\":%u}}}",
             topic, b64, n ? d[n - 1] : 0u);
    pl__rc_on_data(w->c, msg, strlen(msg), false, true, w->now);
    free(b64);
    free(msg);
}

static void record(world *w, int ctl, const uint8_t *d, size_t n) {
    int op = ctl & 15;
    w->now += advance[(ctl >> 6) & 3];
    timers(w);
    if (w->closed) {
        /* Anything now changes nothing and produces nothing. */
        pl__rc_on_data(w->c, d, n, false, true, w->now);
        pl__rc_on_timer(w->c, w->now);
        take(w);
        return;
    }
    char name[PL_TRANSPORT_TOPIC_MAX + 1];
    name_of(name, d, n, (ctl >> 4) & 3);
    switch (op) {
    case 0:
        pl__rc_on_data(w->c, d, n, false, true, w->now);
        break;
    case 1:
        pl__rc_on_data(w->c, d, n, false, false, w->now);
        break;
    case 2:
        pl__rc_on_data(w->c, d, n, true, true, w->now);
        break;
    case 3:
        if (w->connecting) {
            w->connecting = false;
            w->open = true;
        }
        pl__rc_on_open(w->c, w->now);
        break;
    case 4: {
        char why[64] = "";
        unsigned status = n >= 2 ? (unsigned)d[0] << 8 | d[1] : 0;
        if (n > 2)
            snprintf(why, sizeof why, "%.*s", (int)(n - 2 < 63 ? n - 2 : 63), (const char *)d + 2);
        pl__rc_on_failed(w->c, status, why, w->now);
        break;
    }
    case 5:
        pl__rc_on_closed(w->c, n >= 2 ? d[0] << 8 | d[1] : 0, w->now);
        break;
    case 6:
        pl__rc_on_lost(w->c, PL_ERR_WEBSOCKET, w->now);
        break;
    case 7:
        pl__rc_on_pong(w->c, w->now);
        break;
    case 8: {
        pl_publish_opts po = {.ttl_s = n ? d[0] : 0};
        uint64_t seq = 0;
        pl_err e = pl__rc_publish(w->c, name, d, n, &po, w->now, &seq);
        if (e == PL_OK) {
            check(seq == w->seqs + 1);
            w->seqs = seq;
            w->unreported++;
            if (seq > MAXSEQ) abort(); /* the queue bound keeps us far below */
        } else {
            check(seq == 0 && (e == PL_ERR_STATE || e == PL_ERR_TOO_LARGE));
        }
        break;
    }
    case 9: {
        pl_err e = pl__rc_subscribe(w->c, name, w->now);
        check(e == PL_OK || e == PL_ERR_TOO_LARGE || e == PL_ERR_EXISTS);
        if (e == PL_OK && !subscribed(w, name) && w->nsubs < 8)
            snprintf(w->subs[w->nsubs++], sizeof w->subs[0], "%s", name);
        else if (e == PL_OK && !subscribed(w, name))
            check(pl__rc_unsubscribe(w->c, name, w->now) == PL_OK); /* keep the model small */
        break;
    }
    case 10:
        check(pl__rc_unsubscribe(w->c, name, w->now) == PL_OK);
        for (size_t i = 0; i < w->nsubs; i++)
            if (!strcmp(w->subs[i], name)) {
                memcpy(w->subs[i], w->subs[--w->nsubs], sizeof w->subs[0]);
                break;
            }
        break;
    case 11:
        answer(w, d, n);
        break;
    case 12:
        push(w, w->nsubs ? w->subs[(n ? d[0] : 0) % w->nsubs] : names[0], d, n);
        break;
    case 13: {
        uint64_t pending = w->unreported;
        (void)pl__rc_close(w->c);
        w->closed = true;
        size_t cancelled = 0;
        pl__rc_output o;
        while (pl__rc_poll(w->c, &o)) {
            if (o.kind == PL__RC_RESULT && o.err == PL_ERR_CANCELLED) {
                check(o.seq >= 1 && o.seq <= MAXSEQ && !w->reported[o.seq]);
                w->reported[o.seq] = true;
                cancelled++;
            } else {
                check(o.kind == PL__RC_RESULT); /* results made before the close */
                if (o.op == PL_RELAY_OP_PUBLISH) {
                    check(!w->reported[o.seq]);
                    w->reported[o.seq] = true;
                    pending--;
                }
            }
            pl__rc_output_clear(&o);
        }
        check(cancelled == pending);
        w->unreported = 0;
        break;
    }
    default:
        break;
    }
    take(w);
    timers(w);
}

static void world_init(world *w) {
    memset(w, 0, sizeof *w);
    w->now = T0;
    rng_state = 1;
    pl__rc_config cfg = {.url = "ws://relay.test:8787",
                         .seed = seed32,
                         .rng = rng,
                         .rng_ctx = &rng_state,
                         .max_queue = 64,
                         .max_topics = 8,
                         .max_frame_bytes = 65536,
                         .dedup_capacity = 16};
    check(pl__rc_new(&w->c, &cfg, w->now) == PL_OK);
    timers(w);
}

static void run(world *w, const uint8_t *data, size_t size) {
    size_t i = 0;
    while (i + 3 <= size) {
        int ctl = data[i];
        size_t n = (size_t)data[i + 1] << 8 | data[i + 2];
        i += 3;
        if (n > size - i) n = size - i;
        record(w, ctl, data + i, n);
        i += n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    world w;
    world_init(&w);
    run(&w, data, size);
    pl__rc_free(w.c);
    return 0;
}

/* ---- seeds ---- */

typedef struct seed {
    uint8_t b[4096];
    size_t len;
} seed;

#define CTL(op, t, adv) ((op) | ((t) << 4) | ((adv) << 6))

static void add(seed *s, int ctl, const void *d, size_t n) {
    check(n <= 0xffff && s->len + 3 + n <= sizeof s->b);
    s->b[s->len++] = (uint8_t)ctl;
    s->b[s->len++] = (uint8_t)(n >> 8);
    s->b[s->len++] = (uint8_t)n;
    if (n) memcpy(s->b + s->len, d, n);
    s->len += n;
}

static void write_seed(const char *dir, const char *name, const seed *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(s->b, 1, s->len, f);
    fclose(f);
    /* Each seed must replay clean. */
    LLVMFuzzerTestOneInput(s->b, s->len);
}

static void write_seeds(const char *dir) {
    seed s = {.len = 0};
    /* subscribe, publish, open, acks, a push, a duplicate, an answer */
    add(&s, CTL(9, 1, 0), NULL, 0);
    add(&s, CTL(9, 0, 0), NULL, 0);
    add(&s, CTL(8, 0, 0),
        "\x3c"
        "hello",
        6);
    add(&s, CTL(3, 0, 0), NULL, 0);
    add(&s, CTL(11, 0, 0), "\x02", 1);
    add(&s, CTL(12, 0, 0), "\x00payload", 8);
    add(&s, CTL(12, 0, 0), "\x00payload", 8);
    add(&s, CTL(12, 0, 0), "\x01not-b64!", 9);
    add(&s, CTL(8, 1, 1),
        "\x3c"
        "bytes",
        6);
    add(&s, CTL(11, 0, 0), "\x00", 1);
    write_seed(dir, "seed-flow", &s);

    /* rate limits and time-outs, a lost connection, backoff, reconnect */
    s.len = 0;
    add(&s, CTL(3, 0, 0), NULL, 0);
    add(&s, CTL(8, 0, 0), "\x3cq", 2);
    add(&s, CTL(11, 0, 0), "\x03", 1);
    add(&s, CTL(14, 0, 2), NULL, 0);
    add(&s, CTL(11, 0, 0), "\x04", 1);
    add(&s, CTL(8, 2, 0), "\x3cr", 2);
    add(&s, CTL(14, 0, 2), NULL, 0);
    add(&s, CTL(14, 0, 2), NULL, 0);
    add(&s, CTL(14, 0, 2), NULL, 0);
    add(&s, CTL(14, 0, 2), NULL, 0);
    add(&s, CTL(3, 0, 0), NULL, 0);
    add(&s, CTL(7, 0, 3), NULL, 0);
    add(&s, CTL(5, 0, 0), "\x03\xe9", 2);
    add(&s, CTL(14, 0, 2), NULL, 0);
    add(&s, CTL(4, 0, 0),
        "\x00\x00"
        "ssl error",
        11);
    add(&s, CTL(14, 0, 3), NULL, 0);
    add(&s, CTL(3, 0, 0), NULL, 0);
    add(&s, CTL(6, 0, 0), NULL, 0);
    write_seed(dir, "seed-retries", &s);

    /* auth refused, then a close with queued publishes */
    s.len = 0;
    add(&s, CTL(8, 0, 0),
        "\x3c"
        "a",
        2);
    add(&s, CTL(4, 0, 0), "\x01\x91", 2);
    add(&s, CTL(8, 0, 0),
        "\x3c"
        "b",
        2);
    add(&s, CTL(13, 0, 0), NULL, 0);
    add(&s, CTL(0, 0, 0), "{\"id\":1}", 8);
    write_seed(dir, "seed-auth-close", &s);

    /* frames: fragments, binary, garbage, another method */
    s.len = 0;
    add(&s, CTL(3, 0, 0), NULL, 0);
    add(&s, CTL(1, 0, 0), "{\"id\":9,\"jsonrpc\":", 18);
    add(&s, CTL(0, 0, 0), "\"2.0\",\"method\":\"irn_x\",\"params\":{}}", 35);
    add(&s, CTL(2, 0, 0), "\x00\x01", 2);
    add(&s, CTL(0, 0, 0), "[{\"id\":1,\"jsonrpc\":\"2.0\",\"result\":true}]", 40);
    add(&s, CTL(0, 0, 0), "not json", 8);
    add(&s, CTL(10, 1, 0), NULL, 0);
    add(&s, CTL(5, 0, 0), "\x0b\xb8", 2);
    write_seed(dir, "seed-frames", &s);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}
