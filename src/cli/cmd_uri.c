/* SPDX-License-Identifier: Apache-2.0 */
/* pairlink uri new | parse */
#include "cli/cli.h"

#include "pairlink/codec.h"
#include "pairlink/hash.h"
#include "pairlink/uri.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Validity of a parsed URI: the topic check from the parser and the expiry
 * against the wall clock, reported separately so a user sees every problem. */
typedef struct uri_checks {
    pl_err topic;  /* PL_OK or PL_ERR_URI_TOPIC_MISMATCH */
    pl_err expiry; /* PL_OK or PL_ERR_URI_EXPIRED */
} uri_checks;

static bool checks_ok(const uri_checks *c) { return c->topic == PL_OK && c->expiry == PL_OK; }

/* The "uri" event of docs/cli.md: times in ms, snake_case keys. */
static json_t *uri_to_json(const pl_uri *u, int64_t now, bool with_key, const uri_checks *c) {
    json_t *o = json_object();
    json_object_set_new(o, "event", json_string("uri"));
    json_object_set_new(o, "topic", json_string(u->topic));
    json_object_set_new(o, "version", json_integer(u->version));
    json_object_set_new(o, "relay_protocol", json_string(u->relay_protocol));
    json_object_set_new(o, "relay_data", u->relay_data ? json_string(u->relay_data) : json_null());
    json_t *m = json_array();
    for (size_t i = 0; i < u->n_methods; i++) json_array_append_new(m, json_string(u->methods[i]));
    json_object_set_new(o, "methods", m);
    /* expiryTimestamp: unix seconds in the URI, milliseconds here */
    if (u->expiry) {
        json_object_set_new(o, "expiry_ms", json_integer(u->expiry * 1000));
        json_object_set_new(o, "expires_in_ms", json_integer((u->expiry - now) * 1000));
    } else {
        json_object_set_new(o, "expiry_ms", json_null());
    }
    json_object_set_new(o, "topic_matches_key", json_boolean(c->topic == PL_OK));
    json_object_set_new(o, "expired", json_boolean(c->expiry != PL_OK));
    json_object_set_new(o, "valid", json_boolean(checks_ok(c)));
    if (with_key) {
        char hex[PL_HEX_SIZE(PL_SYMKEY_BYTES)];
        pl_hex_encode(hex, sizeof hex, u->sym_key, sizeof u->sym_key);
        json_object_set_new(o, "sym_key", json_string(hex));
        pl_wipe(hex, sizeof hex);
    }
    return o;
}

static void print_fields(const pl_uri *u, int64_t now, const uri_checks *c) {
    printf("topic:           %s\n", u->topic);
    printf("version:         %d\n", u->version);
    printf("relay-protocol:  %s\n", u->relay_protocol);
    if (u->relay_data) printf("relay-data:      %s\n", u->relay_data);
    printf("methods:        ");
    if (!u->n_methods) printf(" (none)");
    for (size_t i = 0; i < u->n_methods; i++) printf(" %s", u->methods[i]);
    printf("\n");
    if (u->expiry)
        printf("expiryTimestamp: %lld (%s %lld s %s)\n", (long long)u->expiry,
               u->expiry > now ? "expires in" : "expired", (long long)llabs(u->expiry - now),
               u->expiry > now ? "from now" : "ago");
    else printf("expiryTimestamp: (none: treated as now + 300 s)\n");
    printf("symKey:          32 bytes (shown with --show-key)\n");
    printf("topic check:     %s\n", c->topic == PL_OK ? "ok, topic = sha256(symKey)"
                                                        : "FAILED, topic is not sha256(symKey)");
    printf("valid:           %s\n", checks_ok(c) ? "yes" : "no");
}

static int uri_parse_main(int argc, char **argv) {
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"show-key", no_argument, 0, 'k'},
                                         {"no-expiry-check", no_argument, 0, 'n'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    bool show_key = false, check = true;
    pl_cli_out out = {.cmd = "uri parse"};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "jknh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            out.json = true;
            break;
        case 'k': show_key = true; break;
        case 'n': check = false; break;
        case 'h':
            printf("usage: pairlink uri parse [--json] [--show-key] [--no-expiry-check] URI\n\n"
                   "Parse and validate a WalletConnect v2 pairing URI: print its fields, whether\n"
                   "the topic is sha256(symKey), and the time to expiry. Exits 1 when the URI\n"
                   "could not be paired with (malformed, topic mismatch, or expired; the expiry\n"
                   "check is skipped with --no-expiry-check).\n");
            return 0;
        default: return pl_cli_usage_error("uri parse", "bad option");
        }
    }
    if (optind != argc - 1) return pl_cli_usage_error("uri parse", "expects exactly one URI");
    const char *s = argv[optind];
    int64_t now = (int64_t)time(NULL);
    pl_uri u;
    uri_checks chk = {PL_OK, PL_OK};
    pl_err e = pl_uri_inspect(&u, s, strlen(s), -1, &chk.topic);
    if (e != PL_OK) return pl_cli_error(&out, e, "invalid pairing URI: %s", pl_strerror(e));
    if (check && u.expiry && u.expiry <= now) chk.expiry = PL_ERR_URI_EXPIRED;
    if (out.json) {
        pl_cli_emit(&out, uri_to_json(&u, now, show_key, &chk));
    } else {
        print_fields(&u, now, &chk);
        if (show_key) {
            char hex[PL_HEX_SIZE(PL_SYMKEY_BYTES)];
            pl_hex_encode(hex, sizeof hex, u.sym_key, sizeof u.sym_key);
            printf("symKey (hex):    %s\n", hex);
            pl_wipe(hex, sizeof hex);
        }
    }
    pl_uri_clear(&u);
    int rc = 0;
    if (chk.topic != PL_OK)
        rc = pl_cli_error(&out, chk.topic, "this URI cannot be paired with: %s",
                          pl_strerror(chk.topic));
    if (chk.expiry != PL_OK)
        rc = pl_cli_error(&out, chk.expiry, "this URI cannot be paired with: %s",
                          pl_strerror(chk.expiry));
    return rc;
}

static int uri_new_main(int argc, char **argv) {
    static const struct option opts[] = {{"methods", required_argument, 0, 'm'},
                                         {"ttl", required_argument, 0, 't'},
                                         {"json", no_argument, 0, 'j'},
                                         {"no-qr", no_argument, 0, 'q'},
                                         {"qr", no_argument, 0, 'Q'},
                                         {"qr-png", required_argument, 0, 'P'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *methods = NULL;
    long long ttl = 300;
    pl_cli_out out = {.cmd = "uri new"};
    pl_cli_qr qr = {.mode = PL_CLI_QR_AUTO};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:jqQP:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': methods = optarg; break;
        case 't': {
            char *end;
            ttl = strtoll(optarg, &end, 10);
            if (*end || ttl <= 0 || ttl > 30LL * 86400)
                return pl_cli_usage_error("uri new", "--ttl takes seconds, 1..2592000");
            break;
        }
        case 'j':
            out.json = true;
            break;
        case 'q': qr.mode = PL_CLI_QR_OFF; break;
        case 'Q': qr.mode = PL_CLI_QR_ON; break;
        case 'P': qr.png_path = optarg; break;
        case 'h':
            printf("usage: pairlink uri new [--methods a,b] [--ttl SECONDS] [--json]\n"
                   "                        [--qr | --no-qr] [--qr-png FILE]\n\n"
                   "Create a fresh pairing: random symKey, topic = sha256(symKey), and the\n"
                   "pairing URI (expiring after --ttl, default 300 s), shown with a QR code.\n"
                   "The symKey is part of the URI: treat the URI as a secret.\n"
                   "The QR code is drawn when stdout is a terminal; --qr draws it anyway,\n"
                   "--no-qr never. --qr-png FILE also writes it as a PNG image (mode 0600).\n");
            return 0;
        default: return pl_cli_usage_error("uri new", "bad option");
        }
    }
    if (optind != argc) return pl_cli_usage_error("uri new", "takes no positional arguments");
    if (pl_cli_qr_open(&qr, "uri new") != 0) return 1;

    char *list[PL_URI_MAX_METHODS];
    size_t n = 0;
    char *copy = methods ? strdup(methods) : NULL;
    if (methods && !copy) {
        pl_cli_qr_close(&qr);
        return pl_cli_error(&out, PL_ERR_NOMEM, NULL);
    }
    for (char *save = NULL, *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n == PL_URI_MAX_METHODS) {
            free(copy);
            pl_cli_qr_close(&qr);
            return pl_cli_error(&out, PL_ERR_TOO_LARGE, "--methods: at most %d methods",
                                PL_URI_MAX_METHODS);
        }
        list[n++] = tok;
    }
    int64_t now = (int64_t)time(NULL);
    pl_uri u;
    pl_err e = pl_uri_new(&u, (const char *const *)list, n, now, ttl);
    free(copy);
    if (e != PL_OK) {
        pl_cli_qr_close(&qr);
        return pl_cli_error(&out, e, "creating the pairing: %s", pl_strerror(e));
    }
    char *s = NULL;
    e = pl_uri_format(&s, &u);
    if (e != PL_OK) {
        pl_uri_clear(&u);
        pl_cli_qr_close(&qr);
        return pl_cli_error(&out, e, "formatting the URI: %s", pl_strerror(e));
    }
    int rc = pl_cli_qr_show(&qr, "uri new", s, out.json);
    if (out.json) {
        uri_checks ok = {PL_OK, PL_OK};
        json_t *o = uri_to_json(&u, now, true, &ok);
        json_object_set_new(o, "uri", json_string(s));
        pl_cli_emit(&out, o);
    } else {
        printf("%s\n", s);
        printf("topic %s, expires in %lld s\n", u.topic, ttl);
    }
    pl_free_secret(s, strlen(s));
    pl_uri_clear(&u);
    return rc;
}

int pl_cli_uri(int argc, char **argv) {
    static const pl_cli_cmd sub[] = {
        {"new", uri_new_main, "create a pairing URI (and show its QR code)"},
        {"parse", uri_parse_main, "parse and validate a pairing URI"},
    };
    return pl_cli_dispatch("pairlink uri", sub, sizeof sub / sizeof sub[0], argc, argv);
}
