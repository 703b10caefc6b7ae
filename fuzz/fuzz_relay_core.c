/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the relay server's protocol core (src/relay/relay_core.h)
 * driven by a script of frames from four connections.
 *
 * Input: records separated by '\n' (JSON never needs a raw newline, so a
 * real frame is one record). A record's first byte is a control byte, the
 * rest is the frame:
 *   bits 0-1  connection 0..3 (0, 1 authenticated with a did:key; 2, 3
 *             anonymous; 3 has id UINT64_MAX);
 *   bits 2-4  0..4: pl__relay_core_receive(frame); 5: tick only;
 *             6: close the connection and open it again; 7: the frame
 *             twice (a re-sent request);
 *   bits 5-7  time advance before the record: 0, 1, 50, 1000, 5000, 10001,
 *             60000 or 3600000 ms.
 * Empty records are skipped. Connections 0 and 1 come from one address, 2
 * and 3 from another (admitted, and charged as publishers). Limits are
 * small (4 topics per connection, 4 messages per topic, 32 KiB stored, 12
 * messages and 12 topics in all, quotas of 6 messages and 6 topics, 2
 * unacknowledged pushes or 4 KiB of them, 4 KiB fetch pages, 3 push
 * attempts, burst 64) so that the limit paths are reached; frames up to
 * 16 KiB. Every frame the core sends is reported written.
 *
 * After every call the harness runs tick when a deadline is due and pops
 * every action. Checks, besides "no crash, no leak, no UB, no hang":
 *  - receive returns one of its documented codes; on a connection that is
 *    not open it returns PL_ERR_DISCONNECTED and produces nothing;
 *  - every SEND goes to an open connection, is NUL-terminated with len =
 *    strlen, and is a JSON object (or array of objects) with
 *    "jsonrpc":"2.0";
 *  - every STORE_PUT has a 64-lowercase-hex topic, id = sha256(message) hex,
 *    message_len = strlen(message), expiry after publication, and is new;
 *    every STORE_DEL names a stored record; the number of records so
 *    tracked equals the core's stats.messages after every step, and at the
 *    end the stored bytes equal stats.message_bytes;
 *  - after tick(now), the next deadline is later than now (else a runtime
 *    would spin);
 *  - at the end, once every connection is closed and every message
 *    expired, the core accounts for no memory, socket or queued byte.
 *
 * With PL_FUZZ_WRITE_SEEDS=DIR in the environment, the initializer writes
 * real frame sequences (subscribe, publish, acknowledge the push, fetch,
 * batch methods, unsubscribe, expiry) to DIR as seeds. */
#include "pairlink/hash.h"
#include "relay/relay_core.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 INT64_C(1700000000000)
#define NCONN 4
#define MAX_FRAME 16384
#define MAX_RECS 64 /* live records tracked; the limits keep fewer */

static const char *const dids[NCONN] = {
    "did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH",
    "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", NULL, NULL};
static const uint64_t conn_ids[NCONN] = {1, 2, 3, UINT64_MAX};
static const char *const addrs[NCONN] = {"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.2"};
static const int64_t advance[8] = {0, 1, 50, 1000, 5000, 10001, 60000, 3600000};

static void check(int cond) {
    if (!cond) abort();
}

typedef struct rec_key {
    char topic[PL_RELAY_TOPIC_HEX + 1], id[PL_RELAY_ID_HEX + 1];
    size_t len;
} rec_key;

typedef struct harness {
    pl__relay_core *c;
    int64_t now;
    bool open[NCONN];
    rec_key recs[MAX_RECS];
    size_t nrecs;
    /* seed writer: the last irn_subscription id pushed to each connection */
    char push_id[NCONN][32];
} harness;

static int conn_index(uint64_t conn) {
    for (int i = 0; i < NCONN; i++)
        if (conn_ids[i] == conn) return i;
    return -1;
}

static bool lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static bool rpc_object(const json_t *o) {
    return json_is_object(o) && json_is_string(json_object_get(o, "jsonrpc")) &&
           !strcmp(json_string_value(json_object_get(o, "jsonrpc")), "2.0");
}

static void check_send(harness *h, const pl__relay_action *a) {
    int k = conn_index(a->conn);
    check(k >= 0 && h->open[k]);
    check(a->text != NULL && strlen(a->text) == a->len);
    json_error_t err;
    json_t *j = json_loadb(a->text, a->len, JSON_DECODE_ANY, &err);
    check(j != NULL);
    if (json_is_array(j)) {
        check(json_array_size(j) > 0);
        for (size_t i = 0; i < json_array_size(j); i++) check(rpc_object(json_array_get(j, i)));
    } else {
        check(rpc_object(j));
        const json_t *m = json_object_get(j, "method");
        const json_t *id = json_object_get(j, "id");
        if (json_is_string(m) && !strcmp(json_string_value(m), "irn_subscription") &&
            json_is_integer(id))
            snprintf(h->push_id[k], sizeof h->push_id[k], "%lld", (long long)json_integer_value(id));
    }
    json_decref(j);
}

static void check_store(harness *h, const pl__relay_action *a) {
    const pl__relay_record *r = &a->rec;
    check(lower_hex(r->topic, PL_RELAY_TOPIC_HEX) && lower_hex(r->id, PL_RELAY_ID_HEX));
    size_t i = 0;
    while (i < h->nrecs && (strcmp(h->recs[i].topic, r->topic) || strcmp(h->recs[i].id, r->id))) i++;
    if (a->kind == PL__RELAY_STORE_DEL) {
        check(i < h->nrecs);
        h->recs[i] = h->recs[--h->nrecs];
        return;
    }
    check(i == h->nrecs && h->nrecs < MAX_RECS);
    check(r->message != NULL && strlen(r->message) == r->message_len);
    check(r->expires_at_ms > r->published_at_ms);
    uint8_t d[32];
    char hex[PL_RELAY_ID_HEX + 1];
    pl_sha256(d, (const uint8_t *)r->message, r->message_len);
    for (int b = 0; b < 32; b++) snprintf(hex + 2 * b, 3, "%02x", d[b]);
    check(!strcmp(hex, r->id));
    rec_key *n = &h->recs[h->nrecs++];
    memcpy(n->topic, r->topic, sizeof n->topic);
    memcpy(n->id, r->id, sizeof n->id);
    n->len = r->message_len;
}

static void drain(harness *h) {
    pl__relay_action a;
    while (pl__relay_core_pop(h->c, &a)) {
        switch (a.kind) {
        case PL__RELAY_SEND:
            check_send(h, &a);
            pl__relay_core_sent(h->c, a.conn, a.len);
            break;
        case PL__RELAY_STORE_PUT:
        case PL__RELAY_STORE_DEL: check_store(h, &a); break;
        case PL__RELAY_CLOSE: {
            int k = conn_index(a.conn);
            check(k >= 0 && h->open[k]);
            pl__relay_core_close(h->c, a.conn);
            pl__relay_core_unadmit(h->c, addrs[k]);
            h->open[k] = false;
            break;
        }
        default: check(0);
        }
        pl__relay_action_release(&a);
    }
    pl__relay_stats st;
    pl__relay_core_stats(h->c, &st);
    check(st.messages == h->nrecs);
}

static void tick_if_due(harness *h) {
    if (pl__relay_core_next_deadline(h->c) > h->now) return;
    pl__relay_core_tick(h->c, h->now);
    check(pl__relay_core_next_deadline(h->c) > h->now);
    drain(h);
}

static void close_conn(harness *h, int k) {
    if (!h->open[k]) return;
    pl__relay_core_close(h->c, conn_ids[k]);
    pl__relay_core_unadmit(h->c, addrs[k]);
    h->open[k] = false;
}

static void open_conn(harness *h, int k) {
    if (h->open[k]) return;
    check(pl__relay_core_admit(h->c, addrs[k]) == PL_OK);
    check(pl__relay_core_open(h->c, conn_ids[k], dids[k], addrs[k], h->now) == PL_OK);
    h->open[k] = true;
    drain(h);
}

/* Fixed hash-table keys: a run is a function of its input alone. */
static void fixed_rng(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    memset(buf, 0x5a, len);
}

static void harness_init(harness *h) {
    memset(h, 0, sizeof *h);
    h->now = T0;
    pl__relay_limits l = {0};
    l.max_frame_bytes = MAX_FRAME;
    l.max_message_bytes = 2048;
    l.max_topics_per_conn = 4;
    l.max_mailbox_per_topic = 4;
    l.max_total_bytes = 32768;
    l.max_messages = 12;
    l.max_topics = 12;
    l.quota_messages = 6;
    l.quota_topics = 6;
    l.max_memory_bytes = 1 << 20;
    l.conn_cost_bytes = 1024;
    l.rate_burst = 64;
    l.max_push_attempts = 3;
    l.max_inflight_per_conn = 2;
    l.max_inflight_bytes_per_conn = 4096;
    l.fetch_page_bytes = 4096;
    l.rng = fixed_rng;
    check(pl__relay_core_new(&h->c, &l, h->now) == PL_OK);
    for (int k = 0; k < NCONN; k++) open_conn(h, k);
}

static void harness_free(harness *h) {
    for (int k = 0; k < NCONN; k++) close_conn(h, k);
    drain(h);
    pl__relay_stats st;
    pl__relay_core_stats(h->c, &st);
    size_t bytes = 0;
    for (size_t i = 0; i < h->nrecs; i++) bytes += h->recs[i].len;
    check(st.conns == 0 && st.message_bytes == bytes);
    /* Every charge was given back. */
    pl__relay_core_tick(h->c, h->now + INT64_C(31) * 86400 * 1000);
    drain(h);
    pl__relay_core_stats(h->c, &st);
    check(st.messages == 0 && st.topics == 0 && st.memory == 0 && st.stored_bytes == 0 &&
          st.queued_bytes == 0 && st.sockets == 0);
    pl__relay_core_free(h->c);
}

static void receive(harness *h, int k, const char *f, size_t len) {
    pl_err e = pl__relay_core_receive(h->c, conn_ids[k], f, len, h->now);
    switch (e) {
    case PL_OK:
    case PL_ERR_JSON:
    case PL_ERR_RPC_INVALID:
    case PL_ERR_TOO_LARGE:
    case PL_ERR_NOT_FOUND:
    case PL_ERR_INVALID_ARG:
    case PL_ERR_BAD_TTL:
    case PL_ERR_MAILBOX_FULL:
    case PL_ERR_RATE_LIMITED:
    case PL_ERR_RELAY_BUSY:
    case PL_ERR_NOMEM: break;
    default: check(0);
    }
    drain(h);
}

static void record(harness *h, const uint8_t *r, size_t n) {
    if (n == 0) return;
    int k = r[0] & 3, op = (r[0] >> 2) & 7;
    h->now += advance[r[0] >> 5];
    tick_if_due(h);
    const char *f = (const char *)r + 1;
    size_t fl = n - 1;
    if (op == 6) {
        close_conn(h, k);
        drain(h);
    }
    open_conn(h, k);
    if (op == 5 || op == 6) return;
    receive(h, k, f, fl);
    if (op == 7) receive(h, k, f, fl);
}

static void run(harness *h, const uint8_t *data, size_t size) {
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            record(h, data + start, i - start);
            start = i + 1;
        }
    }
    /* A connection id that was never opened. */
    check(pl__relay_core_receive(h->c, 999, "{}", 2, h->now) == PL_ERR_DISCONNECTED);
    pl__relay_action a;
    check(!pl__relay_core_pop(h->c, &a));
}

/* ---- seeds ---- */

typedef struct seed {
    char buf[8192];
    size_t len;
} seed;

static void topic_of(char out[65], const char *name) {
    uint8_t d[32];
    pl_sha256(d, (const uint8_t *)name, strlen(name));
    for (int b = 0; b < 32; b++) snprintf(out + 2 * b, 3, "%02x", d[b]);
}

/* Append one record to the seed and run it on h, so that later records can
 * answer what the core said (the push ids). */
__attribute__((format(printf, 4, 5))) static void add(seed *s, harness *h, int ctl, const char *fmt,
                                                      ...) {
    char frame[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(frame, sizeof frame, fmt, ap);
    va_end(ap);
    check(n >= 0 && (size_t)n < sizeof frame && s->len + (size_t)n + 2 < sizeof s->buf);
    size_t at = s->len;
    if (s->len) s->buf[s->len++] = '\n';
    s->buf[s->len++] = (char)ctl;
    memcpy(s->buf + s->len, frame, (size_t)n);
    s->len += (size_t)n;
    size_t rs = at ? at + 1 : 0;
    record(h, (const uint8_t *)s->buf + rs, s->len - rs);
}

static void write_seed(const char *dir, const char *name, const seed *s) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(s->buf, 1, s->len, f);
    fclose(f);
}

#define CTL(conn, op, adv) ((conn) | ((op) << 2) | ((adv) << 5))

static void write_seeds(const char *dir) {
    char t1[65], t2[65], t3[65];
    topic_of(t1, "topic-1"), topic_of(t2, "topic-2"), topic_of(t3, "topic-3");
    harness h;
    seed s;

    /* Subscribe, publish from another connection, acknowledge the push. */
    harness_init(&h), s.len = 0;
    add(&s, &h, CTL(0, 0, 0), "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t1);
    add(&s, &h, CTL(1, 0, 1), "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"aGVsbG8=\",\"ttl\":300,\"tag\":1100,\"prompt\":true}}", t1);
    add(&s, &h, CTL(0, 0, 1), "{\"id\":%s,\"jsonrpc\":\"2.0\",\"result\":true}", h.push_id[0]);
    add(&s, &h, CTL(0, 0, 1), "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_unsubscribe\",\"params\":{\"topic\":\"%s\",\"id\":\"x\"}}", t1);
    write_seed(dir, "seed-subscribe-publish-ack", &s);
    harness_free(&h);

    /* Publish first, then an anonymous subscriber fetches; expiry. */
    harness_init(&h), s.len = 0;
    add(&s, &h, CTL(2, 0, 0), "{\"id\":\"1712345678901234567\",\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"first\",\"ttl\":10}}", t2);
    add(&s, &h, CTL(3, 0, 1), "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t2);
    add(&s, &h, CTL(3, 0, 1), "{\"id\":6,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t2);
    add(&s, &h, CTL(3, 5, 5), "%s", "");
    add(&s, &h, CTL(3, 5, 6), "%s", "");
    write_seed(dir, "seed-fetch-expire", &s);
    harness_free(&h);

    /* Batch methods; a push left unacknowledged until it is given up. */
    harness_init(&h), s.len = 0;
    add(&s, &h, CTL(0, 0, 0), "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchSubscribe\",\"params\":{\"topics\":[\"%s\",\"%s\"]}}", t1, t2);
    add(&s, &h, CTL(1, 0, 1), "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchPublish\",\"params\":{\"messages\":[{\"topic\":\"%s\",\"message\":\"a\",\"ttl\":60},{\"topic\":\"%s\",\"message\":\"b\",\"ttl\":60,\"tag\":4}]}}", t1, t2);
    add(&s, &h, CTL(0, 0, 1), "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchFetchMessages\",\"params\":{\"topics\":[\"%s\",\"%s\"]}}", t1, t2);
    add(&s, &h, CTL(0, 5, 5), "%s", "");
    add(&s, &h, CTL(0, 5, 5), "%s", "");
    add(&s, &h, CTL(0, 0, 1), "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_batchUnsubscribe\",\"params\":{\"subscriptions\":[{\"topic\":\"%s\",\"id\":\"y\"}]}}", t1);
    write_seed(dir, "seed-batch", &s);
    harness_free(&h);

    /* Errors: not JSON, not JSON-RPC, unknown method, bad params, bad ttl,
     * an error response, a reconnect, a re-sent publish. */
    harness_init(&h), s.len = 0;
    add(&s, &h, CTL(0, 0, 0), "%s", "{not json");
    add(&s, &h, CTL(0, 0, 0), "%s", "[1,2]");
    add(&s, &h, CTL(0, 0, 0), "%s", "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_nope\",\"params\":{}}");
    add(&s, &h, CTL(0, 0, 0), "%s", "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"ABC\"}}");
    add(&s, &h, CTL(1, 0, 0), "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"m\",\"ttl\":1}}", t3);
    add(&s, &h, CTL(1, 0, 0), "%s", "{\"id\":4,\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32000,\"message\":\"x\"}}");
    add(&s, &h, CTL(1, 6, 2), "%s", "");
    add(&s, &h, CTL(1, 7, 0), "{\"id\":5,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"again\",\"ttl\":30}}", t3);
    write_seed(dir, "seed-errors", &s);
    harness_free(&h);

    /* A full topic: acknowledged messages make room; the fifth publish of
     * a listener that never acknowledges is refused; fetch pages. */
    harness_init(&h), s.len = 0;
    add(&s, &h, CTL(0, 0, 0), "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t1);
    for (int i = 0; i < 6; i++) {
        add(&s, &h, CTL(2, 0, 1), "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"m%d\",\"ttl\":60}}", 10 + i, t1, i);
        add(&s, &h, CTL(0, 0, 1), "{\"id\":%s,\"jsonrpc\":\"2.0\",\"result\":true}", h.push_id[0]);
    }
    add(&s, &h, CTL(1, 0, 1), "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t1);
    for (int i = 6; i < 12; i++)
        add(&s, &h, CTL(2, 0, 1), "{\"id\":%d,\"jsonrpc\":\"2.0\",\"method\":\"irn_publish\",\"params\":{\"topic\":\"%s\",\"message\":\"m%d\",\"ttl\":60}}", 10 + i, t1, i);
    add(&s, &h, CTL(3, 0, 1), "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t1);
    add(&s, &h, CTL(3, 0, 1), "{\"id\":4,\"jsonrpc\":\"2.0\",\"method\":\"irn_fetchMessages\",\"params\":{\"topic\":\"%s\"}}", t1);
    write_seed(dir, "seed-full-topic", &s);
    harness_free(&h);

    /* WalletConnect's proposal/approval methods. */
    harness_init(&h), s.len = 0;
    add(&s, &h, CTL(0, 0, 0), "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"irn_subscribe\",\"params\":{\"topic\":\"%s\"}}", t1);
    add(&s, &h, CTL(1, 0, 1), "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"wc_proposeSession\",\"params\":{\"pairingTopic\":\"%s\",\"sessionProposal\":\"P\",\"attestation\":\"a\",\"ttl\":300}}", t1);
    add(&s, &h, CTL(0, 0, 1), "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"wc_approveSession\",\"params\":{\"pairingTopic\":\"%s\",\"sessionTopic\":\"%s\",\"sessionProposalResponse\":\"R\",\"sessionSettlementRequest\":\"S\",\"ttl\":300,\"correlationId\":1}}", t1, t2);
    write_seed(dir, "seed-wc-methods", &s);
    harness_free(&h);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (pl_init() != PL_OK) abort();
    const char *dir = getenv("PL_FUZZ_WRITE_SEEDS");
    if (dir) write_seeds(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    harness h;
    harness_init(&h);
    run(&h, data, size);
    harness_free(&h);
    return 0;
}
