/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the control messages between cluster instances
 * (pl__relay_ctl_parse, relay/cluster_ctl.h), which arrive from the NATS
 * cluster. Checks, besides "no crash, no leak, no UB": a message that
 * parses holds only what parse promises (a valid instance id, a 64-hex
 * topic or none, at most PL_RELAY_ROOM_MAX hex ids, flags 0-3), and
 * formatting it again gives bytes that parse to the same message. */
#include "relay/cluster_ctl.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
    if (!cond) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static pl__relay_ctl m, again;
    pl_err e = pl__relay_ctl_parse((const char *)data, size, &m);
    if (e != PL_OK) {
        check(e == PL_ERR_TOO_LARGE || e == PL_ERR_JSON || e == PL_ERR_INVALID_ARG);
        check(!m.instance[0] && !m.nids && !m.nflags);
        return 0;
    }
    check(pl__relay_instance_valid(m.instance));
    check(!m.topic[0] || strlen(m.topic) == PL_RELAY_TOPIC_HEX);
    check(m.nids <= PL_RELAY_ROOM_MAX && m.nflags <= PL_RELAY_ROOM_MAX);
    for (size_t i = 0; i < m.nflags; i++)
        check(m.flags[i] <= 3);
    char *out = NULL;
    size_t len = 0;
    e = pl__relay_ctl_format(m.instance, m.topic[0] ? m.topic : NULL, m.has_ids ? m.ids : NULL,
                             m.nids, m.has_flags ? m.flags : NULL, m.nflags, &out, &len);
    if (e == PL_ERR_NOMEM) return 0;
    check(e == PL_OK);
    check(pl__relay_ctl_parse(out, len, &again) == PL_OK);
    check(!strcmp(again.instance, m.instance) && !strcmp(again.topic, m.topic));
    check(again.nids == m.nids && !memcmp(again.ids, m.ids, m.nids * PL_RELAY_ID_HEX));
    check(again.nflags == m.nflags && !memcmp(again.flags, m.flags, m.nflags));
    free(out);
    return 0;
}
