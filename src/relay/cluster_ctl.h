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

#endif
