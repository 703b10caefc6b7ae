/* SPDX-License-Identifier: Apache-2.0 */
/* The control messages relay instances of one cluster exchange over plain
 * NATS subjects (backend_nats.c; docs/relay.md "Cluster" lists the
 * subjects). Each is one JSON object of at most PL__RELAY_CTL_MAX bytes:
 *   presence  {"v":1,"i":INSTANCE}                     hello, heartbeat, bye
 *   room      {"v":1,"i":INSTANCE,"t":TOPIC,"ids":IDS}  which of these are you done with?
 *   answer    {"v":1,"i":INSTANCE,"t":TOPIC,"f":FLAGS}  per id: PL_RELAY_ROOM_* as a digit
 *   evicted   {"v":1,"i":INSTANCE,"t":TOPIC,"ids":IDS}  gone from the store
 * IDS: message ids (64 lowercase hex characters each) concatenated, at
 * most PL_RELAY_ROOM_MAX; FLAGS: one digit 0-3 per id of the room asked.
 * Pure functions: no I/O, any thread. Another instance is trusted to run
 * pairlink, not to send well-formed bytes: everything is checked. */
#ifndef PAIRLINK_RELAY_CLUSTER_CTL_H
#define PAIRLINK_RELAY_CLUSTER_CTL_H

#include "pairlink/common.h"
#include "relay/relay_core.h"

#include <stddef.h>
#include <stdint.h>

#define PL__RELAY_CTL_MAX (PL_RELAY_ROOM_MAX * PL_RELAY_ID_HEX + 1024)
#define PL__RELAY_INSTANCE_MAX 63 /* bytes of an instance id */

typedef struct pl__relay_ctl {
    char instance[PL__RELAY_INSTANCE_MAX + 1];
    char topic[PL_RELAY_TOPIC_HEX + 1]; /* "" when absent */
    char ids[PL_RELAY_ROOM_MAX * PL_RELAY_ID_HEX];
    size_t nids;
    uint8_t flags[PL_RELAY_ROOM_MAX];
    size_t nflags;
    bool has_ids, has_flags;
} pl__relay_ctl;

/* Parse one message into *out (zeroed first). Errors: PL_ERR_TOO_LARGE
 * (over PL__RELAY_CTL_MAX), PL_ERR_JSON (not a JSON object, duplicate
 * keys), PL_ERR_INVALID_ARG (v is not 1, an instance id that is empty,
 * too long or not printable ASCII, a topic or ids that are not lowercase
 * hex of the right length, too many ids, a flag that is not 0-3). */
pl_err pl__relay_ctl_parse(const char *data, size_t len, pl__relay_ctl *out);

/* Write a message: topic NULL for presence; ids (nids of them) or flags
 * (nflags) or neither. *out malloc'ed, NUL-terminated, *len without the
 * NUL. Errors: PL_ERR_INVALID_ARG (an instance id parse would refuse, more
 * than PL_RELAY_ROOM_MAX ids or flags), PL_ERR_NOMEM. */
pl_err pl__relay_ctl_format(const char *instance, const char *topic, const char *ids, size_t nids,
                            const uint8_t *flags, size_t nflags, char **out, size_t *len);

/* Whether s can be an instance id (1..63 printable ASCII, no spaces). */
bool pl__relay_instance_valid(const char *s);

/* ---- the control plane's state: who is here, the rooms out ----------------
 * No I/O and no clock: the backend (backend_nats.c) feeds it what it heard
 * and the time (monotonic ms), sends what it says to send, and takes the
 * rooms it decided. docs/relay.md "Cluster" (Presence, A full topic keeps
 * flowing) says why each rule is there. */

#define PL__RELAY_CTL_HB_MS 1000        /* a heartbeat this often */
#define PL__RELAY_CTL_LOST_MS 3500      /* an instance not heard this long is gone */
#define PL__RELAY_CTL_ROOM_WAIT_MS 1000 /* a room waits this long for its answers */
#define PL__RELAY_CTL_MEMBERS_MAX 1024  /* instances followed; more: no room goes out */
#define PL__RELAY_CTL_ROOMS_MAX 4096    /* rooms out at once */

typedef struct pl__relay_plane pl__relay_plane;

/* self: this instance's id (never a member); now: the start, from which the
 * first PL__RELAY_CTL_LOST_MS are a warm-up (the view may be short of an
 * instance: rooms then wait their whole time and count every answer).
 * Errors: PL_ERR_INVALID_ARG (self not an instance id), PL_ERR_NOMEM. */
pl_err pl__relay_plane_new(pl__relay_plane **out, const char *self, int64_t now_ms);
void pl__relay_plane_free(pl__relay_plane *p); /* NULL ok; frees the rooms out */

/* Instance id was heard at now (any message of it). 1: new (the backend
 * says so in its log), 0: known or itself, -1: one too many to follow
 * (PL__RELAY_CTL_MEMBERS_MAX; every room fails from then on). */
int pl__relay_plane_seen(pl__relay_plane *p, const char *id, int64_t now_ms);
/* It said bye: no longer a member, and rooms stop waiting for it. false:
 * unknown. */
bool pl__relay_plane_gone(pl__relay_plane *p, const char *id);
/* One member not heard for PL__RELAY_CTL_LOST_MS by now, removed as by
 * gone; its id into id. false: none. */
bool pl__relay_plane_expire(pl__relay_plane *p, int64_t now_ms,
                            char id[PL__RELAY_INSTANCE_MAX + 1]);
size_t pl__relay_plane_members(const pl__relay_plane *p);

/* A room for the core's ROOM action (n ids of PL_RELAY_ID_HEX chars, copied):
 * it waits for every member of now. *token names it in the answers; *ask:
 * send the question (false when there is nobody to ask outside the warm-up:
 * take decides it at once). Errors: PL_ERR_RELAY_BUSY (too many rooms out,
 * or more instances than followed: the core is answered "nothing goes"),
 * PL_ERR_INVALID_ARG (n over PL_RELAY_ROOM_MAX, a topic not 64 hex),
 * PL_ERR_NOMEM. */
pl_err pl__relay_plane_room(pl__relay_plane *p, const char *topic, const char *ids, size_t n,
                            int64_t now_ms, uint64_t *token, bool *ask);
/* m answered room token: its flags merged (DONE only if every answer says
 * so, ACKED if one does); it is heard (seen). Errors: PL_ERR_NOT_FOUND (no
 * such room: decided already, or not ours), PL_ERR_INVALID_ARG (another
 * topic, or not one flag per id: it counts as silent). */
pl_err pl__relay_plane_answer(pl__relay_plane *p, uint64_t token, const pl__relay_ctl *m,
                              int64_t now_ms);

/* A decided room, taken out of the plane. */
typedef struct pl__relay_room_done {
    char topic[PL_RELAY_TOPIC_HEX + 1];
    char *ids;      /* n ids, owned: free() */
    uint8_t *flags; /* owned: free(); NULL: not every instance answered in time */
    size_t n;
    char silent[PL__RELAY_INSTANCE_MAX + 1]; /* with flags NULL: one that did not answer */
} pl__relay_room_done;

/* Take one room decided by now: every member answered (outside the warm-up),
 * or its time is up (answered by all it waited for: flags; else NULL).
 * false: none. */
bool pl__relay_plane_take(pl__relay_plane *p, int64_t now_ms, pl__relay_room_done *out);
/* When take or expire has work next (monotonic ms); INT64_MAX: never. */
int64_t pl__relay_plane_deadline(const pl__relay_plane *p);
size_t pl__relay_plane_rooms(const pl__relay_plane *p);

#endif
