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
 *             WATCH (publisher: body[0] % 4 names connection 0..2's conn id,
 *             or none; odd body[0]: with that store_ref); 6: close the
 *             connection and open it again; 7: the store's other inputs,
 *             by body[0] % 8 (no body: tick):
 *               0 tick;
 *               1 answer the oldest ROOM, each candidate's flags from the
 *                 body (body[1 + i % (len - 1)] & 3), or, with no body
 *                 beyond body[0], n = 0 (not every instance answered);
 *               2 acknowledge the oldest push to the connection;
 *               3 evicted (a known message, chosen by body[1]);
 *               4 stored_at (a known message, body[1]; ref 1 + body[2]);
 *               5 room_query (the topic of known message body[1], up to
 *                 four known ids from body[2]);
 *               6 answer the oldest ROOM: every candidate DONE|ACKED;
 *               7 evicted, room_query of an id made of the body;
 *             "known" messages: those of STORE_PUTs, ingests and ROOMs;
 *   bits 5-7  time advance before the record: 0, 1, 50, 1000, 5000, 10001,
 *             60000 or 3600000 ms.
 * Limits are small (4 topics per connection, 4 messages per topic, 12
 * messages and topics in all) so that the limit paths are reached.
 *
 * Checks, besides "no crash, no leak, no UB, no hang": every SEND goes to an
 * open connection and is JSON-RPC 2.0; no STORE_DEL is produced; every
 * STORE_PUT carries a new put id; LOAD, WATCH and UNWATCH name a
 * 64-hex topic, and a topic is never watched twice or unwatched unwatched;
 * a ROOM names 1..PL_RELAY_ROOM_MAX hex ids and is never asked twice for
 * a topic before its answer; every EVICT names a message the last answer
 * on its topic said DONE, with no store_ref or one given for it
 * (stored_at, ingest); room_query gives only the two flags, DONE for a
 * topic that is not watched;
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
#define MAXK 64    /* known messages */
#define MAXP 16    /* pushes remembered per connection */
#define MAXREF 256 /* store_refs given */

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
    /* ROOMs not yet answered, oldest first (ids owned). */
    struct room {
        char topic[PL_RELAY_TOPIC_HEX + 1];
        char *ids;
        size_t n;
    } rooms[MAXQ];
    size_t nrooms;
    /* The last answer per topic: what an EVICT may name. */
    struct answer {
        char topic[PL_RELAY_TOPIC_HEX + 1];
        char *ids; /* owned */
        uint8_t *flags;
        size_t n;
    } answers[MAXQ];
    size_t nanswers;
    struct known {
        char topic[PL_RELAY_TOPIC_HEX + 1];
        char id[PL_RELAY_ID_HEX + 1];
    } known[MAXK];
    size_t nknown, next_known;
    int64_t pushes[NCONN][MAXP];
    size_t npushes[NCONN];
    struct ref {
        char topic[PL_RELAY_TOPIC_HEX + 1];
        char id[PL_RELAY_ID_HEX + 1];
        uint64_t ref;
    } refs[MAXREF];
    size_t nrefs;
    bool refs_lost; /* more were given than remembered: no check */
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

static void remember(harness *h, const char *topic, const char *id) {
    for (size_t i = 0; i < h->nknown; i++)
        if (!strcmp(h->known[i].topic, topic) && !memcmp(h->known[i].id, id, PL_RELAY_ID_HEX))
            return;
    struct known *k = &h->known[h->next_known];
    h->next_known = (h->next_known + 1) % MAXK;
    if (h->nknown < MAXK) h->nknown++;
    memcpy(k->topic, topic, sizeof k->topic);
    memcpy(k->id, id, PL_RELAY_ID_HEX);
    k->id[PL_RELAY_ID_HEX] = '\0';
}

static void ref_given(harness *h, const char *topic, const char *id, uint64_t ref) {
    if (!ref) return;
    if (h->nrefs == MAXREF) {
        h->refs_lost = true;
        return;
    }
    struct ref *r = &h->refs[h->nrefs++];
    memcpy(r->topic, topic, sizeof r->topic);
    memcpy(r->id, id, sizeof r->id);
    r->ref = ref;
}

static bool ref_ok(const harness *h, const pl__relay_record *rec) {
    if (!rec->store_ref || h->refs_lost) return true;
    for (size_t i = 0; i < h->nrefs; i++)
        if (h->refs[i].ref == rec->store_ref && !strcmp(h->refs[i].topic, rec->topic) &&
            !strcmp(h->refs[i].id, rec->id))
            return true;
    return false;
}

/* An EVICT of topic/id: the last answer on topic said DONE of it. */
static bool evict_ok(const harness *h, const char *topic, const char *id) {
    for (size_t i = 0; i < h->nanswers; i++) {
        const struct answer *a = &h->answers[i];
        if (strcmp(a->topic, topic)) continue;
        for (size_t j = 0; j < a->n; j++)
            if (!memcmp(a->ids + j * PL_RELAY_ID_HEX, id, PL_RELAY_ID_HEX))
                return (a->flags[j] & PL_RELAY_ROOM_DONE) != 0;
        return false;
    }
    return false;
}

/* A push to connection k (an irn_subscription request): its id. */
static void note_push(harness *h, int k, json_t *j) {
    json_t *m = json_object_get(j, "method");
    if (!json_is_string(m) || strcmp(json_string_value(m), "irn_subscription")) return;
    if (h->npushes[k] == MAXP) {
        memmove(h->pushes[k], h->pushes[k] + 1, (MAXP - 1) * sizeof h->pushes[k][0]);
        h->npushes[k]--;
    }
    h->pushes[k][h->npushes[k]++] = json_integer_value(json_object_get(j, "id"));
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
            note_push(h, k, j);
            json_decref(j);
            pl__relay_core_sent(h->c, a.conn, a.len);
            break;
        }
        case PL__RELAY_CLOSE: {
            int k = (int)a.conn - 1;
            check(k >= 0 && k < NCONN && h->open[k]);
            pl__relay_core_close(h->c, a.conn);
            h->open[k] = false;
            h->npushes[k] = 0;
            break;
        }
        case PL__RELAY_STORE_PUT:
            check(a.put_id > h->last_put);
            h->last_put = a.put_id;
            check(h->nputs < MAXQ);
            h->puts[h->nputs++] = a.put_id;
            remember(h, a.rec.topic, a.rec.id);
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
        case PL__RELAY_ROOM:
            check(lower_hex(a.rec.topic, PL_RELAY_TOPIC_HEX));
            check(a.nids >= 1 && a.nids <= PL_RELAY_ROOM_MAX && a.ids && h->nrooms < MAXQ);
            for (size_t i = 0; i < h->nrooms; i++)
                check(strcmp(h->rooms[i].topic, a.rec.topic) != 0);
            for (size_t i = 0; i < a.nids * PL_RELAY_ID_HEX; i++) {
                char ch = a.ids[i];
                check((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'));
            }
            for (size_t i = 0; i < a.nids; i++)
                remember(h, a.rec.topic, a.ids + i * PL_RELAY_ID_HEX);
            memcpy(h->rooms[h->nrooms].topic, a.rec.topic, PL_RELAY_TOPIC_HEX + 1);
            h->rooms[h->nrooms].ids = a.ids;
            h->rooms[h->nrooms++].n = a.nids;
            a.ids = NULL; /* kept until answered */
            break;
        case PL__RELAY_EVICT:
            check(lower_hex(a.rec.topic, PL_RELAY_TOPIC_HEX) &&
                  lower_hex(a.rec.id, PL_RELAY_ID_HEX));
            check(a.rec.message == NULL);
            check(evict_ok(h, a.rec.topic, a.rec.id));
            check(ref_ok(h, &a.rec));
            break;
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

/* Answer the oldest ROOM: n = 0 (flags NULL), or flags[i % nf] & 3. */
static void answer_room(harness *h, const uint8_t *flags, size_t nf) {
    if (!h->nrooms) return;
    struct room r = h->rooms[0];
    memmove(h->rooms, h->rooms + 1, --h->nrooms * sizeof h->rooms[0]);
    size_t n = flags && nf ? r.n : 0;
    uint8_t *f = malloc(r.n);
    check(f != NULL);
    for (size_t i = 0; i < r.n; i++)
        f[i] = flags && nf ? flags[i % nf] & 3 : 0;
    /* This answer is what an EVICT on the topic may name from now on. */
    size_t slot = h->nanswers;
    for (size_t i = 0; i < h->nanswers; i++)
        if (!strcmp(h->answers[i].topic, r.topic)) slot = i;
    if (slot == h->nanswers) {
        check(h->nanswers < MAXQ);
        h->nanswers++;
    } else {
        free(h->answers[slot].ids);
        free(h->answers[slot].flags);
    }
    struct answer *a = &h->answers[slot];
    memcpy(a->topic, r.topic, sizeof a->topic);
    a->ids = r.ids;
    a->flags = f;
    a->n = n;
    pl__relay_core_room_answer(h->c, r.topic, r.ids, f, n, h->now);
}

static void query(harness *h, const char *topic, const char *ids, size_t n) {
    uint8_t f[4];
    memset(f, 0xee, sizeof f);
    pl__relay_core_room_query(h->c, topic, ids, n, f);
    bool watched = find_watched(h, topic) != SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        check((f[i] & ~(PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED)) == 0);
        if (!watched) check(f[i] & PL_RELAY_ROOM_DONE);
    }
}

static void store_op(harness *h, int k, const uint8_t *b, size_t bl) {
    if (!bl) {
        pl__relay_core_tick(h->c, h->now);
        return;
    }
    const struct known *m = h->nknown && bl > 1 ? &h->known[b[1] % h->nknown] : NULL;
    switch (b[0] % 8) {
    case 0:
        pl__relay_core_tick(h->c, h->now);
        break;
    case 1:
        answer_room(h, bl > 1 ? b + 1 : NULL, bl - 1);
        break;
    case 2:
        if (h->npushes[k] && h->open[k]) {
            char ack[96];
            int n = snprintf(ack, sizeof ack, "{\"id\":%lld,\"jsonrpc\":\"2.0\",\"result\":true}",
                             (long long)h->pushes[k][0]);
            memmove(h->pushes[k], h->pushes[k] + 1, --h->npushes[k] * sizeof h->pushes[k][0]);
            (void)pl__relay_core_receive(h->c, conn_ids[k], ack, (size_t)n, h->now);
        }
        break;
    case 3:
        if (m) pl__relay_core_evicted(h->c, m->topic, m->id);
        break;
    case 4:
        if (m) {
            uint64_t ref = 1 + (bl > 2 ? b[2] : 0);
            ref_given(h, m->topic, m->id, ref);
            pl__relay_core_stored_at(h->c, m->topic, m->id, ref);
        }
        break;
    case 5:
        if (m) {
            char ids[4 * PL_RELAY_ID_HEX];
            size_t n = 0, from = bl > 2 ? b[2] : 0;
            for (; n < 4 && n < h->nknown; n++)
                memcpy(ids + n * PL_RELAY_ID_HEX, h->known[(from + n) % h->nknown].id,
                       PL_RELAY_ID_HEX);
            query(h, m->topic, ids, n);
        }
        break;
    case 6: {
        const uint8_t all = PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED;
        answer_room(h, &all, 1);
        break;
    }
    default:
        if (m) {
            /* An id of no message (hex of the body), and a query of it. */
            char id[PL_RELAY_ID_HEX + 1];
            for (size_t i = 0; i < PL_RELAY_ID_HEX; i++)
                id[i] = "0123456789abcdef"[(b[i / 2 % bl] >> (i & 1 ? 0 : 4)) & 15];
            id[PL_RELAY_ID_HEX] = '\0';
            pl__relay_core_evicted(h->c, m->topic, id);
            query(h, m->topic, id, 1);
        }
        break;
    }
}

static void ingest(harness *h, const char *topic, const uint8_t *body, size_t n, int64_t ttl_ms) {
    if (!n) return;
    char *msg = malloc(n + 1);
    check(msg != NULL);
    /* Mostly ASCII (what a JSON record gives), and sometimes the raw
     * bytes: the core refuses what is not UTF-8 (PL_ERR_BAD_UTF8). */
    bool raw = (body[0] & 0x60) == 0x60;
    for (size_t i = 0; i < n; i++)
        msg[i] = raw || body[i] < 0x80 ? (char)body[i] : '?';
    msg[n] = '\0';
    pl__relay_record r;
    memset(&r, 0, sizeof r);
    memcpy(r.topic, topic, PL_RELAY_TOPIC_HEX + 1);
    r.message = msg;
    r.message_len = strlen(msg); /* up to the first NUL */
    r.published_at_ms = h->now - 1;
    r.expires_at_ms = h->now + ttl_ms;
    uint64_t pc = body[0] % 4 < 3 ? conn_ids[body[0] % 4] : 0;
    r.store_ref = body[0] & 1 ? body[0] : 0;
    if (r.message_len) {
        char id[PL_RELAY_ID_HEX + 1];
        uint8_t d[32];
        pl_sha256(d, (const uint8_t *)msg, r.message_len);
        for (int i = 0; i < 32; i++)
            snprintf(id + 2 * i, 3, "%02x", d[i]);
        remember(h, topic, id);
        ref_given(h, topic, id, r.store_ref);
        (void)pl__relay_core_ingest(h->c, &r, pc, h->now);
    }
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
            h->npushes[k] = 0;
        }
        drain(h);
        open_conn(h, k);
        break;
    case 7:
        store_op(h, k, b, bl);
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
    while (h.nputs || h.nloads || h.nrooms) {
        answer_put(&h, 0);
        finish_load(&h, NULL, 0);
        answer_room(&h, NULL, 0);
        drain(&h);
    }
    for (int k = 0; k < NCONN; k++)
        if (h.open[k]) {
            pl__relay_core_close(h.c, conn_ids[k]);
            h.open[k] = false;
        }
    drain(&h);
    while (h.nputs || h.nloads || h.nrooms) { /* a close ends reasons, makes none */
        answer_put(&h, 0);
        finish_load(&h, NULL, 0);
        answer_room(&h, NULL, 0);
        drain(&h);
    }
    pl__relay_core_tick(h.c, h.now + INT64_C(31) * 86400 * 1000);
    drain(&h);
    pl__relay_stats st;
    pl__relay_core_stats(h.c, &st);
    check(st.messages == 0 && st.topics == 0 && st.memory == 0 && st.subscriptions == 0);
    check(h.nwatched == 0);
    for (size_t i = 0; i < h.nanswers; i++) {
        free(h.answers[i].ids);
        free(h.answers[i].flags);
    }
    pl__relay_core_free(h.c);
    return 0;
}
