/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the control plane's state between cluster instances
 * (pl__relay_plane, relay/cluster_ctl.h) driven by a script of what other
 * instances say and when.
 *
 * Input: records of a control byte and a body up to the next '\n':
 *   op = byte % 8: 0 heard instance "i<body[0] % 6>"; 1 it said bye; 2 time
 *   passes (body[0] * 37 ms); 3 expire; 4 a room of 1 + body[0] % 4 ids;
 *   5 the body is parsed as a control message and given as the answer to
 *   the room chosen by the byte's high bits; 6 a well-formed answer of
 *   instance "i<body[0] % 6>" with flags from the body; 7 take.
 * Checks, besides "no crash, no leak, no UB": members and rooms stay within
 * their bounds; a room taken with flags has as many as it has ids, each a
 * combination of the two flags; a room taken without flags names a silent
 * instance; what is taken is never taken again (rooms() counts down); after
 * expire(now) no member is older than PL__RELAY_CTL_LOST_MS. */
#include "relay/cluster_ctl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
    if (!cond) abort();
}

static const char topic[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    pl__relay_plane *p;
    int64_t now = 1000000;
    check(pl__relay_plane_new(&p, "self", now) == PL_OK);
    uint64_t tokens[16];
    size_t ntok = 0;
    char ids[4 * PL_RELAY_ID_HEX];
    memset(ids, 'a', sizeof ids);
    for (size_t off = 0; off < size;) {
        uint8_t ctl = data[off++];
        size_t end = off;
        while (end < size && data[end] != '\n')
            end++;
        const uint8_t *body = data + off;
        size_t blen = end - off;
        off = end < size ? end + 1 : end;
        uint8_t b0 = blen ? body[0] : 0;
        char who[8];
        snprintf(who, sizeof who, "i%d", b0 % 6);
        switch (ctl % 8) {
        case 0:
            (void)pl__relay_plane_seen(p, who, now);
            break;
        case 1:
            (void)pl__relay_plane_gone(p, who);
            break;
        case 2:
            now += (int64_t)b0 * 37;
            break;
        case 3: {
            char id[PL__RELAY_INSTANCE_MAX + 1];
            while (pl__relay_plane_expire(p, now, id))
                ;
            check(pl__relay_plane_deadline(p) == INT64_MAX || pl__relay_plane_rooms(p) ||
                  pl__relay_plane_deadline(p) > now);
            break;
        }
        case 4: {
            uint64_t tok;
            bool ask;
            pl_err e = pl__relay_plane_room(p, topic, ids, 1 + b0 % 4, now, &tok, &ask);
            check(e == PL_OK || e == PL_ERR_RELAY_BUSY || e == PL_ERR_NOMEM);
            if (e == PL_OK && ntok < 16) tokens[ntok++] = tok;
            break;
        }
        case 5: {
            pl__relay_ctl m;
            if (pl__relay_ctl_parse((const char *)body, blen, &m) != PL_OK) break;
            uint64_t tok = ntok ? tokens[(ctl >> 3) % ntok] : 1;
            pl_err e = pl__relay_plane_answer(p, tok, &m, now);
            check(e == PL_OK || e == PL_ERR_NOT_FOUND || e == PL_ERR_INVALID_ARG);
            break;
        }
        case 6: {
            uint8_t flags[4];
            size_t n = 1 + (blen > 1 ? body[1] % 4 : 0);
            for (size_t i = 0; i < n; i++)
                flags[i] = blen > 2 + i ? body[2 + i] % 4 : 0;
            char *text;
            size_t len;
            if (pl__relay_ctl_format(who, topic, NULL, 0, flags, n, &text, &len) != PL_OK) break;
            pl__relay_ctl m;
            check(pl__relay_ctl_parse(text, len, &m) == PL_OK);
            free(text);
            uint64_t tok = ntok ? tokens[(ctl >> 3) % ntok] : 1;
            pl_err e = pl__relay_plane_answer(p, tok, &m, now);
            check(e == PL_OK || e == PL_ERR_NOT_FOUND || e == PL_ERR_INVALID_ARG);
            break;
        }
        default: {
            pl__relay_room_done d;
            size_t before = pl__relay_plane_rooms(p);
            while (pl__relay_plane_take(p, now, &d)) {
                check(pl__relay_plane_rooms(p) == --before);
                check(d.n >= 1 && d.n <= 4 && !strcmp(d.topic, topic));
                if (d.flags) {
                    for (size_t i = 0; i < d.n; i++)
                        check(d.flags[i] <= (PL_RELAY_ROOM_DONE | PL_RELAY_ROOM_ACKED));
                } else {
                    check(d.silent[0] == 'i');
                }
                free(d.ids);
                free(d.flags);
            }
            break;
        }
        }
        check(pl__relay_plane_members(p) <= 6);
        check(pl__relay_plane_rooms(p) <= PL__RELAY_CTL_ROOMS_MAX);
    }
    pl__relay_plane_free(p);
    return 0;
}
