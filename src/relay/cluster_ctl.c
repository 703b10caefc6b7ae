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
