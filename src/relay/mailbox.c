/* The relay core's mailbox: every stored message until its TTL, indexed by
 * (topic, id) for the re-publish check, and a min-heap on expiry. */
#include "relay/internal.h"

#include "core/internal.h"

#include <stdlib.h>
#include <string.h>

bool pl__rs_is_own(const conn *k, const rmsg *m) {
    if (m->publisher_conn == k->id) return true;
    return k->has_did && m->rec.publisher[0] && !strcmp(m->rec.publisher, k->client);
}

void pl__rs_msg_unref(rmsg *m) {
    if (--m->refs) return;
    free(m->rec.message);
    free(m->rec.attestation);
    free(m);
}

/* ---- the expiry heap --------------------------------------------------------- */

static bool heap_less(rmsg *a, rmsg *b) {
    return a->rec.expires_at_ms < b->rec.expires_at_ms;
}

static pl_err heap_push(pl__relay_core *c, rmsg *m) {
    if (c->nheap == c->capheap) {
        size_t nc = c->capheap ? c->capheap * 2 : 256;
        rmsg **nh = realloc(c->heap, nc * sizeof *nh);
        if (!nh) return PL_ERR_NOMEM;
        c->heap = nh;
        c->capheap = nc;
    }
    size_t i = c->nheap++;
    c->heap[i] = m;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(c->heap[i], c->heap[p])) break;
        rmsg *tmp = c->heap[i];
        c->heap[i] = c->heap[p];
        c->heap[p] = tmp;
        i = p;
    }
    return PL_OK;
}

static rmsg *heap_pop(pl__relay_core *c) {
    rmsg *top = c->heap[0];
    c->heap[0] = c->heap[--c->nheap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < c->nheap && heap_less(c->heap[l], c->heap[m])) m = l;
        if (r < c->nheap && heap_less(c->heap[r], c->heap[m])) m = r;
        if (m == i) break;
        rmsg *tmp = c->heap[i];
        c->heap[i] = c->heap[m];
        c->heap[m] = tmp;
        i = m;
    }
    return top;
}

int64_t pl__rs_mailbox_deadline(const pl__relay_core *c) {
    return c->nheap ? c->heap[0]->rec.expires_at_ms : INT64_MAX;
}

/* ---- the id index --------------------------------------------------------------- */

/* One index for every topic: a message id is only unique within its topic,
 * so the key is both. */
static uint64_t id_hash(const pl__relay_core *c, const char *topic_hex, const char *id) {
    char key[PL_RELAY_TOPIC_HEX + PL_RELAY_ID_HEX];
    memcpy(key, topic_hex, PL_RELAY_TOPIC_HEX);
    memcpy(key + PL_RELAY_TOPIC_HEX, id, PL_RELAY_ID_HEX);
    return pl__ht_hash(&c->ids, key, sizeof key);
}

rmsg *pl__rs_mailbox_find(const pl__relay_core *c, const topic *t, const char *id) {
    uint64_t h = id_hash(c, t->hex, id);
    for (pl__hnode *n = pl__ht_first(&c->ids, h); n; n = pl__ht_next(n, h)) {
        rmsg *m = PL__ENTRY(n, rmsg, inode);
        if (m->t == t && !memcmp(m->rec.id, id, PL_RELAY_ID_HEX)) return m;
    }
    return NULL;
}

/* ---- adding and expiring ------------------------------------------------------------ */

pl_err pl__rs_mailbox_add(pl__relay_core *c, topic *t, const pl__relay_record *rec,
                          uint64_t publisher_conn, rmsg **out) {
    rmsg *m = calloc(1, sizeof *m);
    if (!m) return PL_ERR_NOMEM;
    m->rec = *rec;
    m->rec.message = malloc(rec->message_len + 1);
    m->rec.attestation = rec->attestation ? strdup(rec->attestation) : NULL;
    if (!m->rec.message || (rec->attestation && !m->rec.attestation)) goto nomem;
    memcpy(m->rec.message, rec->message, rec->message_len);
    m->rec.message[rec->message_len] = '\0';
    if (pl__ht_insert(&c->ids, &m->inode, id_hash(c, t->hex, m->rec.id)) != PL_OK) goto nomem;
    if (heap_push(c, m) != PL_OK) {
        pl__ht_remove(&c->ids, &m->inode);
        goto nomem;
    }
    m->t = t;
    m->refs = 1;
    m->publisher_conn = publisher_conn;
    m->prev = t->tail;
    if (t->tail)
        t->tail->next = m;
    else
        t->head = m;
    t->tail = m;
    t->nmsgs++;
    c->total_bytes += rec->message_len;
    *out = m;
    return PL_OK;
nomem:
    free(m->rec.message);
    free(m->rec.attestation);
    free(m);
    return PL_ERR_NOMEM;
}

pl_err pl__rs_store_action(pl__relay_core *c, pl__relay_action_kind kind, const rmsg *m) {
    pl__relay_action a = {.kind = kind};
    a.rec = m->rec;
    a.rec.message = NULL;
    a.rec.attestation = NULL;
    if (kind == PL__RELAY_STORE_PUT) {
        a.rec.message = malloc(m->rec.message_len + 1);
        if (!a.rec.message) return PL_ERR_NOMEM;
        memcpy(a.rec.message, m->rec.message, m->rec.message_len + 1);
        if (m->rec.attestation && !(a.rec.attestation = strdup(m->rec.attestation))) {
            free(a.rec.message);
            return PL_ERR_NOMEM;
        }
    } else {
        a.rec.message_len = 0;
    }
    pl_err e = pl__rs_queue(c, &a);
    if (e != PL_OK) pl__relay_action_release(&a);
    return e;
}

void pl__rs_expire(pl__relay_core *c, int64_t now_ms) {
    while (c->nheap && c->heap[0]->rec.expires_at_ms <= now_ms) {
        rmsg *m = heap_pop(c);
        topic *t = m->t;
        if (m->prev)
            m->prev->next = m->next;
        else
            t->head = m->next;
        if (m->next)
            m->next->prev = m->prev;
        else
            t->tail = m->prev;
        m->prev = m->next = NULL;
        pl__ht_remove(&c->ids, &m->inode);
        t->nmsgs--;
        c->total_bytes -= m->rec.message_len;
        m->t = NULL;
        pl__rs_store_action(c, PL__RELAY_STORE_DEL, m);
        pl__rs_topic_gc(c, t);
        pl__rs_msg_unref(m);
    }
}

json_t *pl__rs_message_json(const rmsg *m) {
    json_t *d = json_object();
    if (!d) return NULL;
    json_object_set_new(d, "topic", json_string(m->rec.topic));
    json_object_set_new(d, "message", json_stringn(m->rec.message, m->rec.message_len));
    json_object_set_new(d, "publishedAt", json_integer(m->rec.published_at_ms));
    json_object_set_new(d, "tag", json_integer(m->rec.tag));
    if (m->rec.attestation) json_object_set_new(d, "attestation", json_string(m->rec.attestation));
    return d;
}

void pl__rs_mailbox_free(pl__relay_core *c) {
    for (size_t i = 0; i < c->nheap; i++) {
        rmsg *m = c->heap[i];
        m->t = NULL;
        pl__rs_msg_unref(m);
    }
    free(c->heap);
    c->heap = NULL;
    c->nheap = c->capheap = 0;
    pl__ht_free(&c->ids);
}
