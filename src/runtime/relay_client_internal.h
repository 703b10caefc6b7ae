/* Pure pieces of the relay client (no I/O, no clock), exposed to the unit
 * tests: relay URL parsing, the de-duplication LRU and the backoff curve.
 * Implemented in relay_client.c. Not installed. */
#ifndef PAIRLINK_RELAY_CLIENT_INTERNAL_H
#define PAIRLINK_RELAY_CLIENT_INTERNAL_H

#include "pairlink/common.h"
#include "pairlink/relay_client.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PL__RELAY_HOST_MAX 255

typedef struct pl__relay_url {
    bool tls;                            /* wss:// */
    char host[PL__RELAY_HOST_MAX + 1];   /* for connect(): IPv6 without brackets */
    char host_header[PL__RELAY_HOST_MAX + 9]; /* Host: value ([v6] and :port when not default) */
    int port;
    char path[PL_RELAY_URL_MAX + 1];     /* "/" when absent; includes any ?query */
    bool has_query;
} pl__relay_url;

/* Parse ws://host[:port][/path][?query] or wss://... (scheme case-insensitive).
 * Errors: PL_ERR_BAD_URL. */
pl_err pl__relay_url_parse(pl__relay_url *out, const char *url);

/* Bounded LRU set of 32-byte digests. */
typedef struct pl__dedup pl__dedup;

/* capacity >= 1. Errors: PL_ERR_NOMEM. */
pl_err pl__dedup_new(pl__dedup **out, uint32_t capacity);
void pl__dedup_free(pl__dedup *d); /* NULL ok */
/* True if digest was already present (it becomes the most recent); false if
 * it was not (it is inserted, evicting the least recently seen when full). */
bool pl__dedup_check(pl__dedup *d, const uint8_t digest[32]);
size_t pl__dedup_size(const pl__dedup *d);

/* sha256(topic | '|' | message): the key at-least-once deliveries are
 * de-duplicated on. */
void pl__relay_dedup_key(uint8_t out[32], const char *topic, const char *message, size_t len);

/* Backoff before reconnect attempt `attempt` (0-based): a uniformly jittered
 * value in [b/2, b] where b = min(max_ms, min_ms * 2^attempt); rnd is a
 * random 32-bit number. */
uint32_t pl__relay_backoff_ms(unsigned attempt, uint32_t min_ms, uint32_t max_ms, uint32_t rnd);

#endif
