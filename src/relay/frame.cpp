/* SPDX-License-Identifier: Apache-2.0 */
// The relay core's fast frame reader (frame.h): simdjson's DOM parser
// (it validates the whole document, UTF-8 included, with run-time CPU
// dispatch), read into the fields the core needs. C++ only because
// simdjson is; nothing here throws to C: errors come back as codes and an
// allocation failure is caught.
#include "relay/frame.h"

#include <simdjson.h>

#include <cstring>
#include <new>
#include <string_view>

struct pl__rs_parser {
    simdjson::dom::parser p;
    explicit pl__rs_parser(size_t max) : p(max) {}
};

extern "C" pl__rs_parser *pl__rs_parser_new(size_t max_bytes) {
    try {
        return new pl__rs_parser(max_bytes);
    } catch (...) {
        return nullptr;
    }
}

extern "C" void pl__rs_parser_free(pl__rs_parser *p) { delete p; }

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

// A string the fast path can hand over: no NUL inside (jansson refuses
// one, so such a frame takes jansson's path and gets its answer).
bool str(element v, const char **s, size_t *n) {
    std::string_view sv;
    if (v.get_string().get(sv)) return false;
    if (std::memchr(sv.data(), 0, sv.size())) return false;
    *s = sv.data();
    *n = sv.size();
    return true;
}

// Scalars only, and no key twice (jansson refuses duplicates, and one of
// them may hide in a nested value the core never reads: those go to
// jansson too).
bool flat_unique(object o) {
    std::string_view seen[8];
    size_t n = 0;
    for (auto [key, v] : o) {
        if (v.type() == element_type::OBJECT || v.type() == element_type::ARRAY) return false;
        if (n == 8) return false;
        for (size_t i = 0; i < n; i++)
            if (seen[i] == key) return false;
        seen[n++] = key;
    }
    return true;
}

bool read_params(object p, pl__rs_frame *f, bool publish) {
    if (!flat_unique(p)) return false;
    bool topic = false, message = false;
    for (auto [key, v] : p) {
        if (key == "topic") {
            topic = str(v, &f->topic, &f->topic_len);
            if (!topic) return false;
        } else if (!publish) {
            continue; // irn_subscribe: nothing else is read
        } else if (key == "message") {
            message = str(v, &f->message, &f->message_len);
            if (!message) return false;
        } else if (key == "ttl") {
            if (v.get_int64().get(f->ttl)) return false;
            f->has_ttl = true;
        } else if (key == "tag") {
            if (v.is_null()) continue;
            if (v.get_int64().get(f->tag)) return false;
            f->has_tag = true;
        } else if (key == "attestation") {
            if (v.is_null()) continue;
            if (!str(v, &f->attestation, &f->attestation_len)) return false;
        }
    }
    return topic && (message || !publish);
}

// A push's params: {id, data: {topic, message, publishedAt, tag,
// attestation}}, nothing else nested.
bool read_push(object p, pl__rs_frame *f) {
    std::string_view seen[8];
    size_t n = 0;
    bool data = false;
    for (auto [key, v] : p) {
        if (n == 8) return false;
        for (size_t i = 0; i < n; i++)
            if (seen[i] == key) return false;
        seen[n++] = key;
        if (key == "id") {
            if (!str(v, &f->sub_id, &f->sub_id_len)) return false;
        } else if (key == "data") {
            object d;
            if (v.get_object().get(d) || !flat_unique(d)) return false;
            bool topic = false, message = false;
            for (auto [dk, dv] : d) {
                if (dk == "topic") {
                    topic = str(dv, &f->topic, &f->topic_len);
                    if (!topic) return false;
                } else if (dk == "message") {
                    message = str(dv, &f->message, &f->message_len);
                    if (!message) return false;
                } else if (dk == "publishedAt") {
                    if (dv.get_int64().get(f->published_at)) return false;
                } else if (dk == "tag") {
                    if (dv.is_null()) continue;
                    if (dv.get_int64().get(f->tag)) return false;
                    f->has_tag = true;
                } else if (dk == "attestation") {
                    if (dv.is_null()) continue;
                    if (!str(dv, &f->attestation, &f->attestation_len)) return false;
                }
            }
            data = topic && message;
            if (!data) return false;
        } else if (v.type() == element_type::OBJECT || v.type() == element_type::ARRAY) {
            return false;
        }
    }
    return data && f->sub_id;
}

void parse(simdjson::dom::parser &parser, const char *text, size_t len, pl__rs_frame *f) {
    element root;
    if (parser.parse(text, len, true).get(root)) return;
    object o;
    if (root.get_object().get(o)) return;
    bool has_id = false, rpc = false, result = false, error = false;
    std::string_view method;
    bool has_method = false;
    object params;
    bool has_params = false;
    std::string_view seen[8];
    size_t nseen = 0;
    for (auto [key, v] : o) {
        if (nseen == 8) return;
        for (size_t i = 0; i < nseen; i++)
            if (seen[i] == key) return;
        seen[nseen++] = key;
        if (key == "id") {
            if (v.get_int64().get(f->id)) return;
            has_id = true;
        } else if (key == "jsonrpc") {
            std::string_view s;
            if (v.get_string().get(s) || s != "2.0") return;
            rpc = true;
        } else if (key == "result") {
            result = true;
        } else if (key == "error") {
            error = true;
        } else if (key == "method") {
            if (v.get_string().get(method)) return;
            has_method = true;
        } else if (key == "params") {
            if (v.get_object().get(params)) return;
            has_params = true;
        } else if (v.type() == element_type::OBJECT || v.type() == element_type::ARRAY) {
            return; // a nested value nobody reads: jansson checks it
        }
    }
    if (!has_id || !rpc) return;
    if (!has_method) {
        // An answer (to a push: clients answer `true`). A nested result or
        // error takes jansson's path, which checks it for duplicates.
        if (result == error || has_params) return;
        element v;
        if (o[result ? "result" : "error"].get(v)) return;
        if (v.type() == element_type::OBJECT || v.type() == element_type::ARRAY) return;
        f->kind = PL__RS_FRAME_RESPONSE;
        return;
    }
    if (result || error || !has_params) return;
    if (method == "irn_publish") {
        if (read_params(params, f, true)) f->kind = PL__RS_FRAME_PUBLISH;
    } else if (method == "irn_subscribe") {
        if (read_params(params, f, false)) f->kind = PL__RS_FRAME_SUBSCRIBE;
    } else if (method == "irn_subscription") {
        if (read_push(params, f)) f->kind = PL__RS_FRAME_PUSH;
    }
}

} // namespace

extern "C" void pl__rs_parse_frame(pl__rs_parser *p, const char *text, size_t len,
                                   pl__rs_frame *out) {
    std::memset(out, 0, sizeof *out);
    try {
        parse(p->p, text, len, out);
    } catch (...) {
        std::memset(out, 0, sizeof *out); // (allocation failure) jansson's path decides
    }
    if (out->kind == PL__RS_FRAME_OTHER) std::memset(out, 0, sizeof *out);
}
