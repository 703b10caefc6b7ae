/* SPDX-License-Identifier: Apache-2.0 */
// simdjson On-Demand behind the C interface of shim.h (bench only).
#include "shim.h"

#include <simdjson.h>

using namespace simdjson;

static ondemand::parser *parser() {
    static thread_local ondemand::parser p;
    return &p;
}

extern "C" int sj_parse(const char *buf, size_t len, size_t cap, fields *out) {
    *out = fields{};
    padded_string_view in(buf, len, cap);
    ondemand::document doc;
    if (parser()->iterate(in).get(doc)) return -1;
    ondemand::object o;
    if (doc.get_object().get(o)) return -1;
    for (auto field : o) {
        std::string_view key;
        if (field.unescaped_key().get(key)) return -1;
        ondemand::value v = field.value();
        if (key == "id") {
            if (v.get_int64().get(out->id)) return -1;
        } else if (key == "jsonrpc") {
            std::string_view s;
            if (v.get_string().get(s) || s != "2.0") return -1;
        } else if (key == "result") {
            out->has_result = 1;
        } else if (key == "method") {
            std::string_view s;
            if (v.get_string().get(s)) return -1;
            out->method = s.data();
            out->method_len = s.size();
        } else if (key == "params") {
            ondemand::object p;
            if (v.get_object().get(p)) return -1;
            for (auto pf : p) {
                std::string_view pk;
                if (pf.unescaped_key().get(pk)) return -1;
                ondemand::value pv = pf.value();
                std::string_view s;
                if (pk == "topic") {
                    if (pv.get_string().get(s)) return -1;
                    out->topic = s.data();
                    out->topic_len = s.size();
                } else if (pk == "message") {
                    if (pv.get_string().get(s)) return -1;
                    out->message = s.data();
                    out->message_len = s.size();
                } else if (pk == "ttl") {
                    if (pv.get_int64().get(out->ttl)) return -1;
                } else if (pk == "tag") {
                    if (pv.get_int64().get(out->tag)) return -1;
                }
            }
        }
    }
    return 0; // (simdjson 3.0.1 has no document::at_end: trailing bytes are not checked)
}

static dom::parser *dparser() {
    static thread_local dom::parser p;
    return &p;
}

extern "C" int sj_dom_parse(const char *buf, size_t len, size_t cap, fields *out) {
    *out = fields{};
    (void)cap;
    dom::element root;
    if (dparser()->parse(buf, len, false).get(root)) return -1;
    dom::object o;
    if (root.get_object().get(o)) return -1;
    for (auto [key, v] : o) {
        if (key == "id") {
            if (v.get_int64().get(out->id)) return -1;
        } else if (key == "jsonrpc") {
            std::string_view s;
            if (v.get_string().get(s) || s != "2.0") return -1;
        } else if (key == "result") {
            out->has_result = 1;
        } else if (key == "method") {
            std::string_view s;
            if (v.get_string().get(s)) return -1;
            out->method = s.data();
            out->method_len = s.size();
        } else if (key == "params") {
            dom::object p;
            if (v.get_object().get(p)) return -1;
            for (auto [pk, pv] : p) {
                std::string_view s;
                if (pk == "topic") {
                    if (pv.get_string().get(s)) return -1;
                    out->topic = s.data();
                    out->topic_len = s.size();
                } else if (pk == "message") {
                    if (pv.get_string().get(s)) return -1;
                    out->message = s.data();
                    out->message_len = s.size();
                } else if (pk == "ttl") {
                    if (pv.get_int64().get(out->ttl)) return -1;
                } else if (pk == "tag") {
                    if (pv.get_int64().get(out->tag)) return -1;
                }
            }
        }
    }
    return 0;
}
