/* SPDX-License-Identifier: Apache-2.0 */
/* json-parser (libjsonparser-dev) for bench_json.c: its names clash with
 * jansson's, so it lives in a file of its own. */
#include "shim.h"

#include <json-parser/json.h>
#include <string.h>

/* ---- json-parser ---- */
static json_value *jp_get(json_value *o, const char *k) {
    if (!o || o->type != json_object) return NULL;
    size_t kl = strlen(k);
    for (unsigned i = 0; i < o->u.object.length; i++)
        if (o->u.object.values[i].name_length == kl && !memcmp(o->u.object.values[i].name, k, kl))
            return o->u.object.values[i].value;
    return NULL;
}

int jp_parse(const char *b, size_t n, size_t cap, fields *f) {
    (void)cap;
    memset(f, 0, sizeof *f);
    json_value *r = json_parse(b, n);
    if (!r) return -1;
    json_value *v = jp_get(r, "id");
    f->id = v && v->type == json_integer ? v->u.integer : 0;
    f->has_result = jp_get(r, "result") != NULL;
    v = jp_get(r, "method");
    if (v && v->type == json_string)
        f->method = v->u.string.ptr, f->method_len = v->u.string.length;
    json_value *p = jp_get(r, "params");
    if (p) {
        v = jp_get(p, "topic");
        if (v && v->type == json_string)
            f->topic = v->u.string.ptr, f->topic_len = v->u.string.length;
        v = jp_get(p, "message");
        if (v && v->type == json_string)
            f->message = v->u.string.ptr, f->message_len = v->u.string.length;
        v = jp_get(p, "ttl");
        f->ttl = v && v->type == json_integer ? v->u.integer : 0;
        v = jp_get(p, "tag");
        f->tag = v && v->type == json_integer ? v->u.integer : 0;
    }
    json_value_free(r);
    return 0;
}
