/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the relay core in cluster mode (src/relay/cluster.c),
 * driven by frames from three connections and by a fake shared store that
 * answers puts and loads in an order the input chooses.
 *
 * Input: records separated by '\n'. A record's first byte is a control
 * byte, the rest its body:
 *   bits 0-1  connection 0..2 (0 authenticated with a did:key; 1, 2
 *             anonymous); 3 means connection 0;
 *   bits 2-4  0..2: the body is a frame from that connection; 3: answer the
 *             oldest unanswered put (body[0] % 3: stored, mailbox full,
 *             cluster failure); 4: finish the oldest unfinished load, first
 *             ingesting the body as a stored message of its topic; 5:
 *             ingest the body as a live message on the topic of the newest
 *             WATCH (publisher: body[0] % 3 names connection 0..2's conn id,
 *             or none); 6: close the connection and open it again; 7: tick;
 *   bits 5-7  time advance before the record: 0, 1, 50, 1000, 5000, 10001,
 *             60000 or 3600000 ms.
 * Limits are small (4 topics per connection, 4 messages per topic, 12
 * messages and topics in all) so that the limit paths are reached.
 *
 * Checks, besides "no crash, no leak, no UB, no hang": every SEND goes to an
 * open connection and is JSON-RPC 2.0; no STORE_DEL is produced; every
 * STORE_PUT carries a new put id; LOAD, WATCH and UNWATCH name a
 * 64-hex topic, and a topic is never watched twice or unwatched unwatched;
 * at the end, once every put and load is answered, every connection closed
 * and every message expired, the core holds no topic and accounts for no
 * memory (nothing pinned forever). */
#include "pairlink/hash.h"
#include "relay/relay_core.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0 INT64_C(1700000000000)
#define NCONN 3
#define MAXQ 256

static const char *const dids[NCONN] = {"did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH",
                                        NULL, NULL};
static const uint64_t conn_ids[NCONN] = {1, 2, 3};
static const int64_t advance[8] = {0, 1, 50, 1000, 5000, 10001, 60000, 3600000};

static void check(int cond) {
    if (!cond) abort();
}

typedef struct harness {
    pl__relay_core *c;
    int64_t now;
    bool open[NCONN];
    uint64_t puts[MAXQ];
    size_t nputs;
    uint64_t last_put;
    char loads[MAXQ][PL_RELAY_TOPIC_HEX + 1];
    size_t nloads;
    char watched[MAXQ][PL_RELAY_TOPIC_HEX + 1];
    size_t nwatched;
} harness;

static bool lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static size_t find_watched(const harness *h, const char *t) {
    for (size_t i = 0; i < h->nwatched; i++)
        if (!strcmp(h->watched[i], t)) return i;
    return SIZE_MAX;
}

static void drain(harness *h) {
    pl__relay_action a;
    while (pl__relay_core_pop(h->c, &a)) {
        switch (a.kind) {
        case PL__RELAY_SEND: {
            int k = (int)a.conn - 1;
            check(k >= 0 && k < NCONN && h->open[k]);
            json_t *j = json_loadb(a.text, a.len, JSON_DECODE_ANY, NULL);
            check(j != NULL);
            json_decref(j);
            pl__relay_core_sent(h->c, a.conn, a.len);
            break;
        }
        case PL__RELAY_CLOSE: {
            int k = (int)a.conn - 1;
            check(k >= 0 && k < NCONN && h->open[k]);
            pl__relay_core_close(h->c, a.conn);
            h->open[k] = false;
            break;
        }
        case PL__RELAY_STORE_PUT:
            check(a.put_id > h->last_put);
            h->last_put = a.put_id;
            check(h->nputs < MAXQ);
            h->puts[h->nputs++] = a.put_id;
            break;
        case PL__RELAY_LOAD:
            check(lower_hex(a.rec.topic, PL_RELAY_TOPIC_HEX) && h->nloads < MAXQ);
            memcpy(h->loads[h->nloads++], a.rec.topic, PL_RELAY_TOPIC_HEX + 1);
            break;
        case PL__RELAY_WATCH:
            check(lower_hex(a.rec.topic, PL_RELAY_TOPIC_HEX));
            check(find_watched(h, a.rec.topic) == SIZE_MAX && h->nwatched < MAXQ);
            memcpy(h->watched[h->nwatched++], a.rec.topic, PL_RELAY_TOPIC_HEX + 1);
            break;
        case PL__RELAY_UNWATCH: {
            size_t i = find_watched(h, a.rec.topic);
            check(i != SIZE_MAX);
            memmove(h->watched[i], h->watched[i + 1], (h->nwatched - i - 1) * sizeof h->watched[0]);
            h->nwatched--;
            break;
        }
        default:
            check(0); /* no STORE_DEL in cluster mode */
        }
        pl__relay_action_release(&a);
    }
}

static void open_conn(harness *h, int k) {
    if (h->open[k]) return;
    check(pl__relay_core_open(h->c, conn_ids[k], dids[k], NULL, h->now) == PL_OK);
    h->open[k] = true;
}

static void answer_put(harness *h, uint8_t how) {
    if (!h->nputs) return;
    static const pl_err res[3] = {PL_OK, PL_ERR_MAILBOX_FULL, PL_ERR_CLUSTER};
    uint64_t id = h->puts[0];
    memmove(h->puts, h->puts + 1, --h->nputs * sizeof h->puts[0]);
    pl__relay_core_put_done(h->c, id, res[how % 3], h->now);
}

static void ingest(harness *h, const char *topic, const uint8_t *body, size_t n, int64_t ttl_ms) {
    if (!n) return;
    char *msg = malloc(n + 1);
    check(msg != NULL);
    memcpy(msg, body, n);
    msg[n] = '\0';
    pl__relay_record r;
    memset(&r, 0, sizeof r);
    memcpy(r.topic, topic, PL_RELAY_TOPIC_HEX + 1);
    r.message = msg;
    r.message_len = strlen(msg); /* up to the first NUL */
    r.published_at_ms = h->now - 1;
    r.expires_at_ms = h->now + ttl_ms;
    uint64_t pc = body[0] % 4 < 3 ? conn_ids[body[0] % 4] : 0;
    if (r.message_len) (void)pl__relay_core_ingest(h->c, &r, pc, h->now);
    free(msg);
}

static void finish_load(harness *h, const uint8_t *body, size_t n) {
    if (!h->nloads) return;
    char t[PL_RELAY_TOPIC_HEX + 1];
    memcpy(t, h->loads[0], sizeof t);
    memmove(h->loads, h->loads + 1, --h->nloads * sizeof h->loads[0]);
    ingest(h, t, body, n, 30000);
    pl__relay_core_loaded(h->c, t, h->now);
}

static void record(harness *h, const uint8_t *r, size_t n) {
    if (!n) return;
    int k = (r[0] & 3) % NCONN, op = (r[0] >> 2) & 7;
    h->now += advance[r[0] >> 5];
    const uint8_t *b = r + 1;
    size_t bl = n - 1;
    switch (op) {
    case 3:
        answer_put(h, bl ? b[0] : 0);
        break;
    case 4:
        finish_load(h, b, bl);
        break;
    case 5:
        if (h->nwatched) ingest(h, h->watched[h->nwatched - 1], b, bl, 20000);
        break;
    case 6:
        if (h->open[k]) {
            pl__relay_core_close(h->c, conn_ids[k]);
            h->open[k] = false;
        }
        drain(h);
        open_conn(h, k);
        break;
    case 7:
        break;
    default:
        open_conn(h, k);
        (void)pl__relay_core_receive(h->c, conn_ids[k], (const char *)b, bl, h->now);
        break;
    }
    drain(h);
    if (pl__relay_core_next_deadline(h->c) <= h->now) {
        pl__relay_core_tick(h->c, h->now);
        check(pl__relay_core_next_deadline(h->c) > h->now);
        drain(h);
    }
}

static void fixed_rng(void *ctx, uint8_t *buf, size_t len) {
    (void)ctx;
    memset(buf, 0x5a, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool init;
    if (!init) {
        check(pl_init() == PL_OK);
        init = true;
    }
    harness h;
    memset(&h, 0, sizeof h);
    h.now = T0;
    pl__relay_limits l = {0};
    l.cluster = true;
    l.max_frame_bytes = 16384;
    l.max_message_bytes = 2048;
    l.max_topics_per_conn = 4;
    l.max_mailbox_per_topic = 4;
    l.max_messages = 12;
    l.max_topics = 12;
    l.max_memory_bytes = 1 << 20;
    l.rate_unlimited = true;
    l.max_inflight_per_conn = 2;
    l.fetch_page_bytes = 4096;
    l.rng = fixed_rng;
    check(pl__relay_core_new(&h.c, &l, h.now) == PL_OK);
    for (int k = 0; k < NCONN; k++)
        open_conn(&h, k);
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i == size || data[i] == '\n') {
            record(&h, data + start, i - start);
            start = i + 1;
        }
    }
    /* Everything answered, everyone gone, everything expired: nothing left. */
    while (h.nputs || h.nloads) {
        answer_put(&h, 0);
        finish_load(&h, NULL, 0);
        drain(&h);
    }
    for (int k = 0; k < NCONN; k++)
        if (h.open[k]) {
            pl__relay_core_close(h.c, conn_ids[k]);
            h.open[k] = false;
        }
    drain(&h);
    while (h.nputs || h.nloads) { /* a close can end a load's reason, not make new ones */
        answer_put(&h, 0);
        finish_load(&h, NULL, 0);
        drain(&h);
    }
    pl__relay_core_tick(h.c, h.now + INT64_C(31) * 86400 * 1000);
    drain(&h);
    pl__relay_stats st;
    pl__relay_core_stats(h.c, &st);
    check(st.messages == 0 && st.topics == 0 && st.memory == 0 && st.subscriptions == 0);
    check(h.nwatched == 0);
    pl__relay_core_free(h.c);
    return 0;
}
