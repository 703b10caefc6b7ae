/* SPDX-License-Identifier: Apache-2.0 */
#include "relay/cluster_ctl.h"

#include "core/internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

bool pl__relay_instance_valid(const char *s) {
    size_t n = s ? strlen(s) : 0;
    if (!n || n > PL__RELAY_INSTANCE_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] <= ' ' || s[i] > '~') return false;
    return true;
}

static bool lower_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

pl_err pl__relay_ctl_parse(const char *data, size_t len, pl__relay_ctl *out) {
    PL_REQUIRE(out && (data || !len));
    memset(out, 0, sizeof *out);
    if (len > PL__RELAY_CTL_MAX) return PL_ERR_TOO_LARGE;
    json_t *j = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return PL_ERR_JSON;
    }
    pl_err e = PL_ERR_INVALID_ARG;
    json_t *v = json_object_get(j, "v"), *i = json_object_get(j, "i"), *t = json_object_get(j, "t");
    json_t *ids = json_object_get(j, "ids"), *f = json_object_get(j, "f");
    if (!json_is_integer(v) || json_integer_value(v) != 1 || !json_is_string(i) ||
        json_string_length(i) > PL__RELAY_INSTANCE_MAX ||
        strlen(json_string_value(i)) != json_string_length(i) ||
        !pl__relay_instance_valid(json_string_value(i)))
        goto done;
    memcpy(out->instance, json_string_value(i), json_string_length(i) + 1);
    if (t) {
        if (!json_is_string(t) || json_string_length(t) != PL_RELAY_TOPIC_HEX ||
            !lower_hex(json_string_value(t), PL_RELAY_TOPIC_HEX))
            goto done;
        memcpy(out->topic, json_string_value(t), PL_RELAY_TOPIC_HEX + 1);
    }
    if (ids) {
        size_t n = json_is_string(ids) ? json_string_length(ids) : 1;
        if (!json_is_string(ids) || n % PL_RELAY_ID_HEX ||
            n / PL_RELAY_ID_HEX > PL_RELAY_ROOM_MAX || !lower_hex(json_string_value(ids), n))
            goto done;
        memcpy(out->ids, json_string_value(ids), n);
        out->nids = n / PL_RELAY_ID_HEX;
        out->has_ids = true;
    }
    if (f) {
        size_t n = json_is_string(f) ? json_string_length(f) : PL_RELAY_ROOM_MAX + 1;
        if (n > PL_RELAY_ROOM_MAX) goto done;
        const char *s = json_string_value(f);
        for (size_t k = 0; k < n; k++) {
            if (s[k] < '0' || s[k] > '3') goto done;
            out->flags[k] = (uint8_t)(s[k] - '0');
        }
        out->nflags = n;
        out->has_flags = true;
    }
    e = PL_OK;
done:
    json_decref(j);
    if (e != PL_OK) memset(out, 0, sizeof *out);
    return e;
}

pl_err pl__relay_ctl_format(const char *instance, const char *topic, const char *ids, size_t nids,
                            const uint8_t *flags, size_t nflags, char **out, size_t *len) {
    PL_REQUIRE(out && len && (ids || !nids) && (flags || !nflags));
    *out = NULL;
    *len = 0;
    if (!pl__relay_instance_valid(instance) || nids > PL_RELAY_ROOM_MAX ||
        nflags > PL_RELAY_ROOM_MAX || (topic && strlen(topic) != PL_RELAY_TOPIC_HEX))
        return PL_ERR_INVALID_ARG;
    for (size_t k = 0; k < nflags; k++)
        if (flags[k] > 3) return PL_ERR_INVALID_ARG;
    json_t *j = json_object();
    if (!j) return PL_ERR_NOMEM;
    json_object_set_new(j, "v", json_integer(1));
    json_object_set_new(j, "i", json_string(instance));
    if (topic) json_object_set_new(j, "t", json_string(topic));
    if (ids) json_object_set_new(j, "ids", json_stringn(ids, nids * PL_RELAY_ID_HEX));
    if (flags) {
        char fs[PL_RELAY_ROOM_MAX + 1];
        for (size_t k = 0; k < nflags; k++)
            fs[k] = (char)('0' + flags[k]);
        json_object_set_new(j, "f", json_stringn(fs, nflags));
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) return PL_ERR_NOMEM;
    *out = s;
    *len = strlen(s);
    return PL_OK;
}

/* ---- the control plane's state ---------------------------------------------------- */

typedef struct member {
    char id[PL__RELAY_INSTANCE_MAX + 1];
    int64_t seen;
} member;

typedef struct room {
    struct room *next;
    uint64_t token;
    char topic[PL_RELAY_TOPIC_HEX + 1];
    char *ids;
    uint8_t *flags;
    size_t n;
    char (*want)[PL__RELAY_INSTANCE_MAX + 1]; /* members still to answer */
    size_t nwant;
    int64_t deadline;
    bool warmup;
} room;

struct pl__relay_plane {
    char self[PL__RELAY_INSTANCE_MAX + 1];
    int64_t warm_until;
    member *members;
    size_t nmembers;
    bool overflow;
    room *rooms;
    size_t nrooms;
    uint64_t next_token;
};

pl_err pl__relay_plane_new(pl__relay_plane **out, const char *self, int64_t now_ms) {
    PL_REQUIRE(out && self);
    *out = NULL;
    if (!pl__relay_instance_valid(self)) return PL_ERR_INVALID_ARG;
    pl__relay_plane *p = calloc(1, sizeof *p);
    if (!p) return PL_ERR_NOMEM;
    memcpy(p->self, self, strlen(self) + 1);
    p->warm_until = now_ms + PL__RELAY_CTL_LOST_MS;
    *out = p;
    return PL_OK;
}

static void room_free(room *r) {
    free(r->ids);
    free(r->flags);
    free(r->want);
    free(r);
}

void pl__relay_plane_free(pl__relay_plane *p) {
    if (!p) return;
    for (room *r = p->rooms, *nx; r; r = nx) {
        nx = r->next;
        room_free(r);
    }
    free(p->members);
    free(p);
}

static member *member_find(pl__relay_plane *p, const char *id) {
    for (size_t i = 0; i < p->nmembers; i++)
        if (!strcmp(p->members[i].id, id)) return &p->members[i];
    return NULL;
}

int pl__relay_plane_seen(pl__relay_plane *p, const char *id, int64_t now_ms) {
    PL_REQUIRE(p && id);
    if (!strcmp(id, p->self) || !pl__relay_instance_valid(id)) return 0;
    member *m = member_find(p, id);
    if (m) {
        m->seen = now_ms;
        return 0;
    }
    if (p->nmembers == PL__RELAY_CTL_MEMBERS_MAX) {
        p->overflow = true;
        return -1;
    }
    if (!p->members && !(p->members = calloc(PL__RELAY_CTL_MEMBERS_MAX, sizeof *p->members))) {
        p->overflow = true; /* not followed: rooms cannot wait for it */
        return -1;
    }
    m = &p->members[p->nmembers++];
    memcpy(m->id, id, strlen(id) + 1);
    m->seen = now_ms;
    return 1;
}

/* Rooms stop waiting for id. */
static void unwant(pl__relay_plane *p, const char *id) {
    for (room *r = p->rooms; r; r = r->next)
        for (size_t i = 0; i < r->nwant; i++)
            if (!strcmp(r->want[i], id)) {
                memcpy(r->want[i], r->want[--r->nwant], sizeof r->want[i]);
                break;
            }
}

bool pl__relay_plane_gone(pl__relay_plane *p, const char *id) {
    PL_REQUIRE(p && id);
    member *m = member_find(p, id);
    if (!m) return false;
    *m = p->members[--p->nmembers];
    unwant(p, id);
    return true;
}

bool pl__relay_plane_expire(pl__relay_plane *p, int64_t now_ms,
                            char id[PL__RELAY_INSTANCE_MAX + 1]) {
    PL_REQUIRE(p && id);
    for (size_t i = 0; i < p->nmembers; i++) {
        if (now_ms - p->members[i].seen < PL__RELAY_CTL_LOST_MS) continue;
        memcpy(id, p->members[i].id, PL__RELAY_INSTANCE_MAX + 1);
        return pl__relay_plane_gone(p, id);
    }
    return false;
}

size_t pl__relay_plane_members(const pl__relay_plane *p) {
    PL_REQUIRE(p);
    return p->nmembers;
}

pl_err pl__relay_plane_room(pl__relay_plane *p, const char *topic, const char *ids, size_t n,
                            int64_t now_ms, uint64_t *token, bool *ask) {
    PL_REQUIRE(p && topic && (ids || !n) && token && ask);
    *token = 0;
    *ask = false;
    if (n > PL_RELAY_ROOM_MAX || strlen(topic) != PL_RELAY_TOPIC_HEX) return PL_ERR_INVALID_ARG;
    if (p->overflow || p->nrooms >= PL__RELAY_CTL_ROOMS_MAX) return PL_ERR_RELAY_BUSY;
    room *r = calloc(1, sizeof *r);
    if (!r) return PL_ERR_NOMEM;
    r->ids = malloc(n * PL_RELAY_ID_HEX + 1);
    r->flags = malloc(n ? n : 1);
    r->want = calloc(p->nmembers ? p->nmembers : 1, sizeof *r->want);
    if (!r->ids || !r->flags || !r->want) {
        room_free(r);
        return PL_ERR_NOMEM;
    }
    memcpy(r->topic, topic, PL_RELAY_TOPIC_HEX + 1);
    memcpy(r->ids, ids, n * PL_RELAY_ID_HEX);
    memset(r->flags, PL_RELAY_ROOM_DONE, n);
    r->n = n;
    for (size_t i = 0; i < p->nmembers; i++)
        memcpy(r->want[r->nwant++], p->members[i].id, sizeof r->want[0]);
    r->token = ++p->next_token;
    r->deadline = now_ms + PL__RELAY_CTL_ROOM_WAIT_MS;
    r->warmup = now_ms < p->warm_until;
    r->next = p->rooms;
    p->rooms = r;
    p->nrooms++;
    *token = r->token;
    *ask = r->nwant || r->warmup;
    return PL_OK;
}

pl_err pl__relay_plane_answer(pl__relay_plane *p, uint64_t token, const pl__relay_ctl *m,
                              int64_t now_ms) {
    PL_REQUIRE(p && m);
    room *r = p->rooms;
    while (r && r->token != token)
        r = r->next;
    if (!r) return PL_ERR_NOT_FOUND;
    (void)pl__relay_plane_seen(p, m->instance, now_ms);
    if (!m->has_flags || m->nflags != r->n || strcmp(m->topic, r->topic) != 0)
        return PL_ERR_INVALID_ARG;
    /* Every answer counts, also of an instance it did not wait for. */
    for (size_t i = 0; i < r->n; i++) {
        if (!(m->flags[i] & PL_RELAY_ROOM_DONE)) r->flags[i] &= (uint8_t)~PL_RELAY_ROOM_DONE;
        if (m->flags[i] & PL_RELAY_ROOM_ACKED) r->flags[i] |= PL_RELAY_ROOM_ACKED;
    }
    for (size_t i = 0; i < r->nwant; i++)
        if (!strcmp(r->want[i], m->instance)) {
            memcpy(r->want[i], r->want[--r->nwant], sizeof r->want[i]);
            break;
        }
    return PL_OK;
}

static bool decided(const room *r, int64_t now_ms) {
    return (!r->nwant && !r->warmup) || now_ms >= r->deadline;
}

bool pl__relay_plane_take(pl__relay_plane *p, int64_t now_ms, pl__relay_room_done *out) {
    PL_REQUIRE(p && out);
    memset(out, 0, sizeof *out);
    for (room **pp = &p->rooms; *pp; pp = &(*pp)->next) {
        room *r = *pp;
        if (!decided(r, now_ms)) continue;
        *pp = r->next;
        p->nrooms--;
        memcpy(out->topic, r->topic, sizeof out->topic);
        out->ids = r->ids;
        out->n = r->n;
        if (r->nwant) {
            memcpy(out->silent, r->want[0], sizeof out->silent);
        } else {
            out->flags = r->flags;
            r->flags = NULL;
        }
        r->ids = NULL;
        room_free(r);
        return true;
    }
    return false;
}

int64_t pl__relay_plane_deadline(const pl__relay_plane *p) {
    PL_REQUIRE(p);
    int64_t d = INT64_MAX;
    for (const room *r = p->rooms; r; r = r->next) {
        int64_t at = !r->nwant && !r->warmup ? INT64_MIN : r->deadline;
        if (at < d) d = at;
    }
    for (size_t i = 0; i < p->nmembers; i++)
        if (p->members[i].seen + PL__RELAY_CTL_LOST_MS < d)
            d = p->members[i].seen + PL__RELAY_CTL_LOST_MS;
    return d;
}

size_t pl__relay_plane_rooms(const pl__relay_plane *p) {
    PL_REQUIRE(p);
    return p->nrooms;
}
