/* SPDX-License-Identifier: Apache-2.0 */
/* `pairlink noise`: Waku Noise transcripts (replay, generate) and an
 * in-process pairing demo. */
#include "cli/cli.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/noise.h"
#include "tools/noise_transcript.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (1u << 20)

static bool want_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return true;
    return false;
}

/* Whole file, bounded; "-" is stdin. */
static pl_err read_file(const char *path, char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) return PL_ERR_IO;
    char *buf = malloc(MAX_FILE + 1);
    if (!buf) {
        if (f != stdin) fclose(f);
        return PL_ERR_NOMEM;
    }
    size_t n = fread(buf, 1, MAX_FILE + 1, f);
    bool err = ferror(f);
    if (f != stdin) fclose(f);
    if (err) {
        free(buf);
        return PL_ERR_IO;
    }
    if (n > MAX_FILE) {
        free(buf);
        return PL_ERR_TOO_LARGE;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return PL_OK;
}

static const char replay_usage[] =
    "usage: pairlink noise replay [--json] FILE\n"
    "\n"
    "Replay a Waku Noise transcript (the format of shared/vectors/README.md; any of\n"
    "K1K1, XK1, XX, XXpsk0, WakuPairing) from its keys with the ephemeral keys\n"
    "injected. Checks every wire byte, payload and nametag, the final h, the split\n"
    "keys, the transport messages, the authcode and, for WakuPairing, the QR\n"
    "prologue and both commitments. FILE '-' reads stdin.\n"
    "\n"
    "Exit status: 0 all match; 1 a difference (the first one is printed) or an\n"
    "unreadable transcript; 2 usage.\n";

static int cmd_replay(int argc, char **argv) {
    static const char cmd[] = "noise replay";
    if (want_help(argc, argv)) {
        fputs(replay_usage, stdout);
        return 0;
    }
    pl_cli_out out = {.cmd = cmd};
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            out.json = true;
        else if (argv[i][0] == '-' && argv[i][1]) return pl_cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        else if (path) return pl_cli_usage_error(cmd, "one FILE only");
        else path = argv[i];
    }
    if (!path) return pl_cli_usage_error(cmd, "missing FILE");

    char *text;
    size_t len;
    pl_err e = read_file(path, &text, &len);
    if (e != PL_OK) {
        if (e == PL_ERR_IO) return pl_cli_error(&out, e, "%s: %s", path, strerror(errno));
        if (e == PL_ERR_TOO_LARGE)
            return pl_cli_error(&out, e, "%s: larger than %u bytes", path, MAX_FILE);
        return pl_cli_error(&out, e, "%s: %s", path, pl_strerror(e));
    }
    pl_noise_replay_report r;
    e = pl_noise_transcript_replay(text, len, &r);
    free(text);
    const char *pname = pl_noise_pattern_name(r.pattern);
    if (out.json) {
        /* the result, and the difference or failure that made it one */
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string("replay"));
        json_object_set_new(o, "ok", json_boolean(e == PL_OK && r.match));
        json_object_set_new(o, "pattern", json_string(pname ? pname : ""));
        json_object_set_new(o, "handshake_messages",
                            json_integer((json_int_t)r.handshake_messages));
        json_object_set_new(o, "transport_messages",
                            json_integer((json_int_t)r.transport_messages));
        json_object_set_new(o, "authcode", json_string(r.authcode));
        json_object_set_new(o, "difference",
                            r.first_difference[0] ? json_string(r.first_difference) : json_null());
        pl_cli_emit(&out, o);
        if (e != PL_OK)
            return pl_cli_error(&out, e, "%s: cannot replay: %s", path,
                                r.first_difference[0] ? r.first_difference : pl_strerror(e));
        return r.match ? 0 : 1;
    }
    if (e != PL_OK) {
        fprintf(stderr, "pairlink %s: %s: cannot replay: %s (%s)\n", cmd, path,
                r.first_difference[0] ? r.first_difference : pl_strerror(e), pl_errname(e));
        return 1;
    }
    if (!r.match) {
        printf("MISMATCH %s: %s\n", pname, r.first_difference);
        return 1;
    }
    printf("OK %s: %zu handshake messages, final h, split keys, %zu transport messages%s%s%s\n",
           pname, r.handshake_messages, r.transport_messages,
           r.checked_authcode ? ", authcode " : "", r.checked_authcode ? r.authcode : "",
           r.checked_commitments ? ", QR and commitments" : "");
    return 0;
}

static const char transcript_usage[] =
    "usage: pairlink noise transcript --pattern NAME [--transport N]\n"
    "\n"
    "Write a fresh Waku Noise transcript (random keys, JSON, the shared vector\n"
    "format) to stdout, for another implementation to replay. It contains private\n"
    "keys: test data only.\n"
    "\n"
    "options:\n"
    "  --pattern NAME   K1K1, XK1, XX, XXpsk0 or WakuPairing (or the full name)\n"
    "  --transport N    transport messages after the handshake, alternating\n"
    "                   initiator/responder (default 2, at most 64)\n";

static int cmd_transcript(int argc, char **argv) {
    static const char cmd[] = "noise transcript";
    enum { O_PATTERN = 1, O_TRANSPORT, O_HELP };
    static const struct option longopts[] = {{"pattern", required_argument, NULL, O_PATTERN},
                                             {"transport", required_argument, NULL, O_TRANSPORT},
                                             {"help", no_argument, NULL, O_HELP},
                                             {NULL, 0, NULL, 0}};
    const char *pname = NULL;
    unsigned long transport = 2;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        switch (c) {
        case O_PATTERN:
            pname = optarg;
            break;
        case O_TRANSPORT: {
            char *end;
            errno = 0;
            transport = strtoul(optarg, &end, 10);
            if (errno || *end || !*optarg || optarg[0] == '-' || transport > 64)
                return pl_cli_usage_error(cmd, "--transport wants 0..64");
            break;
        }
        case O_HELP:
            fputs(transcript_usage, stdout);
            return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (!pname) return pl_cli_usage_error(cmd, "--pattern is required");
    pl_noise_pattern p;
    if (pl_noise_pattern_from_name(&p, pname) != PL_OK)
        return pl_cli_usage_error(cmd, "unknown pattern '%s'", pname);
    char *json;
    pl_err e = pl_noise_transcript_generate(&json, p, transport);
    if (e != PL_OK) return pl_cli_fail(cmd, "generate", e);
    fputs(json, stdout);
    pl_free_secret(json, strlen(json));
    return 0;
}

static const char pair_usage[] =
    "usage: pairlink noise pair [--pattern NAME] [--message TEXT] [--json]\n"
    "\n"
    "Demonstrate a Waku Noise pairing between two parties in this process: the\n"
    "handshake message by message (sizes and nametags), the authcode both users\n"
    "would compare, the session content topic, and TEXT sent both ways. With\n"
    "WakuPairing (the default) the responder shows a QR string and the static-key\n"
    "commitments are checked as RFC 43 describes. Keys are fresh and random.\n"
    "\n"
    "options:\n"
    "  --pattern NAME   K1K1, XK1, XX, XXpsk0 or WakuPairing\n"
    "  --message TEXT   transport message (default \"hello over Waku Noise\")\n"
    "  --json           one JSON object per step (docs/cli.md)\n";

static void hex_of(char *out, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
    out[2 * n] = '\0';
}

typedef struct demo {
    uint8_t is[32], rs[32], isp[32], rsp[32], psk[32];
    uint8_t r_val[32], s_val[32], commit_i[32];
    pl_noise_qr qr;
    char *qr_text;
    uint8_t qr_tag[16];
    pl_noise_hs *hi, *hr;
    pl_noise_session *si, *sr;
} demo;

static void demo_free(demo *d) {
    pl_free(d->qr_text);
    pl_noise_hs_free(d->hi);
    pl_noise_hs_free(d->hr);
    pl_noise_session_free(d->si);
    pl_noise_session_free(d->sr);
    pl_wipe(d, sizeof *d);
}

static pl_err demo_setup(demo *d, pl_noise_pattern p) {
    pl_x25519_keypair(d->isp, d->is);
    pl_x25519_keypair(d->rsp, d->rs);
    pl_random(d->psk, 32);
    pl_noise_keys ki = {d->is, NULL, NULL, NULL, NULL}, kr = {d->rs, NULL, NULL, NULL, NULL};
    const uint8_t *psk = p == PL_NOISE_XXPSK0 ? d->psk : NULL;
    if (p != PL_NOISE_WAKU_PAIRING) {
        /* K1K1 and XK1 know the peer's static key in advance; message 1
         * goes out with the all-zero nametag. */
        ki.remote_static_pub = d->rsp;
        kr.remote_static_pub = d->isp;
        pl_err e = pl_noise_hs_new(&d->hr, p, PL_NOISE_RESPONDER, &kr, NULL, 0, psk);
        if (e != PL_OK) return e;
        return pl_noise_hs_new(&d->hi, p, PL_NOISE_INITIATOR, &ki, NULL, 0, psk);
    }
    /* Responder: a fresh eB, a commitment to sB, the QR string, and the
     * nametag of message 1 that travels beside the QR. */
    uint8_t eb_priv[32];
    pl_x25519_keypair(d->qr.ephemeral_pub, eb_priv);
    kr.ephemeral_priv = eb_priv;
    strcpy(d->qr.app, "pairlink-demo");
    strcpy(d->qr.version, "1");
    strcpy(d->qr.shard, "0");
    pl_random(d->r_val, 32);
    pl_random(d->s_val, 32);
    pl_noise_commit(d->qr.committed_static, d->rsp, d->r_val, 32);
    pl_noise_commit(d->commit_i, d->isp, d->s_val, 32);
    pl_random(d->qr_tag, sizeof d->qr_tag);
    pl_err e = pl_noise_qr_encode(&d->qr_text, &d->qr);
    if (e == PL_OK)
        e = pl_noise_hs_new(&d->hr, p, PL_NOISE_RESPONDER, &kr, (const uint8_t *)d->qr_text,
                            strlen(d->qr_text), NULL);
    pl_wipe(eb_priv, sizeof eb_priv);
    if (e != PL_OK) return e;
    /* Initiator: scans the QR; the whole string is the prologue. */
    pl_noise_qr scanned;
    e = pl_noise_qr_parse(&scanned, d->qr_text, strlen(d->qr_text));
    if (e != PL_OK) return e;
    ki.remote_ephemeral_pub = scanned.ephemeral_pub;
    return pl_noise_hs_new(&d->hi, p, PL_NOISE_INITIATOR, &ki, (const uint8_t *)d->qr_text,
                           strlen(d->qr_text), NULL);
}

static int cmd_pair(int argc, char **argv) {
    static const char cmd[] = "noise pair";
    enum { O_PATTERN = 1, O_MESSAGE, O_JSON, O_HELP };
    static const struct option longopts[] = {{"pattern", required_argument, NULL, O_PATTERN},
                                             {"message", required_argument, NULL, O_MESSAGE},
                                             {"json", no_argument, NULL, O_JSON},
                                             {"help", no_argument, NULL, O_HELP},
                                             {NULL, 0, NULL, 0}};
    const char *pname = "WakuPairing", *message = "hello over Waku Noise";
    pl_cli_out out = {.cmd = cmd};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        switch (c) {
        case O_PATTERN:
            pname = optarg;
            break;
        case O_MESSAGE:
            message = optarg;
            break;
        case O_JSON:
            out.json = true;
            break;
        case O_HELP:
            fputs(pair_usage, stdout);
            return 0;
        default:
            return pl_cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return pl_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    pl_noise_pattern p;
    if (pl_noise_pattern_from_name(&p, pname) != PL_OK)
        return pl_cli_usage_error(cmd, "unknown pattern '%s'", pname);
    if (strlen(message) > PL_NOISE_MAX_MESSAGE)
        return pl_cli_error(&out, PL_ERR_TOO_LARGE, "--message: longer than %d bytes",
                            PL_NOISE_MAX_MESSAGE);

    demo d;
    memset(&d, 0, sizeof d);
    int rc = 1;
    pl_err e = demo_setup(&d, p);
    if (e != PL_OK) {
        rc = pl_cli_error(&out, e, "setup: %s", pl_strerror(e));
        goto out;
    }
    if (out.json)
        pl_cli_emit(
            &out, json_pack("{s:s,s:s}", "event", "pattern", "pattern", pl_noise_pattern_name(p)));
    else
        printf("pattern %s\n", pl_noise_pattern_name(p));
    if (p == PL_NOISE_WAKU_PAIRING) {
        char *topic = NULL, tag[33];
        hex_of(tag, d.qr_tag, 16);
        (void)pl_noise_qr_content_topic(&topic, &d.qr);
        if (out.json) {
            pl_cli_emit(&out, json_pack("{s:s,s:s,s:s,s:s?}", "event", "qr", "qr", d.qr_text,
                                        "nametag_hex", tag, "content_topic", topic));
        } else {
            printf("responder QR: %s\n", d.qr_text);
            printf("QR nametag (beside the QR): %s\n", tag);
            if (topic) printf("handshake topic %s\n", topic);
        }
        pl_free(topic);
    }
    /* WakuPairing payloads: H(sA||s), r, s; the other patterns carry text. */
    const uint8_t *payloads[3] = {d.commit_i, d.r_val, d.s_val};
    size_t plens[3] = {32, 32, 32};
    static const char *texts[3] = {"hs1", "hs2", "hs3"};
    uint8_t got1[32];
    for (int step = 0; step < 3; step++) {
        bool from_i = pl_noise_hs_action(d.hi) == PL_NOISE_ACTION_WRITE;
        pl_noise_hs *w = from_i ? d.hi : d.hr, *rd = from_i ? d.hr : d.hi;
        const uint8_t *pl = p == PL_NOISE_WAKU_PAIRING ? payloads[step] : (const uint8_t *)texts[step];
        size_t pll = p == PL_NOISE_WAKU_PAIRING ? plens[step] : strlen(texts[step]);
        const uint8_t *tag = step == 0 ? d.qr_tag : NULL;
        uint8_t *wire = NULL, *got = NULL;
        size_t wl = 0, gl = 0;
        e = pl_noise_hs_write(w, tag, pl, pll, &wire, &wl);
        if (e == PL_OK) e = pl_noise_hs_read(rd, wire, wl, tag, &got, &gl);
        if (e != PL_OK) {
            free(wire);
            rc = pl_cli_error(&out, e, "handshake: %s", pl_strerror(e));
            goto out;
        }
        char tag_hex[33];
        hex_of(tag_hex, wire, 16);
        const char *from = from_i ? "initiator" : "responder",
                   *to = from_i ? "responder" : "initiator";
        if (out.json)
            pl_cli_emit(&out, json_pack("{s:s,s:i,s:s,s:s,s:I,s:s}", "event", "handshake_message",
                                        "step", step + 1, "from", from, "to", to, "bytes",
                                        (json_int_t)wl, "nametag_hex", tag_hex));
        else
            printf("message %d %s -> %s: %zu bytes, nametag %s\n", step + 1, from, to, wl, tag_hex);
        if (p == PL_NOISE_WAKU_PAIRING) {
            uint8_t rs[32];
            if (step == 0 && gl == 32) memcpy(got1, got, 32);
            if (step == 1 && (pl_noise_hs_remote_static(d.hi, rs) != PL_OK ||
                              (e = pl_noise_commit_check(d.qr.committed_static, rs, got, gl)) != PL_OK)) {
                e = e ? e : PL_ERR_NOISE_COMMITMENT;
                rc = pl_cli_error(&out, e, "responder's commitment: %s", pl_strerror(e));
                pl_free_secret(got, gl ? gl : 1), free(wire);
                goto out;
            }
            if (step == 2 && (pl_noise_hs_remote_static(d.hr, rs) != PL_OK ||
                              (e = pl_noise_commit_check(got1, rs, got, gl)) != PL_OK)) {
                e = e ? e : PL_ERR_NOISE_COMMITMENT;
                rc = pl_cli_error(&out, e, "initiator's commitment: %s", pl_strerror(e));
                pl_free_secret(got, gl ? gl : 1), free(wire);
                goto out;
            }
            if (out.json)
                pl_cli_emit(&out, json_pack("{s:s,s:s}", "event", "commitment_checked", "by",
                                            step == 1 ? "initiator" : "responder"));
            else if (step == 1)
                printf("  initiator: responder's static key opens the QR commitment\n");
            else
                printf("  responder: initiator's static key opens message 1's commitment\n");
        }
        pl_free_secret(got, gl ? gl : 1);
        free(wire);
        if (step == 0) {
            char ci[PL_NOISE_AUTHCODE_SIZE], cr[PL_NOISE_AUTHCODE_SIZE];
            pl_noise_hs_authcode(d.hi, ci);
            pl_noise_hs_authcode(d.hr, cr);
            if (out.json)
                pl_cli_emit(&out, json_pack("{s:s,s:s,s:s,s:b}", "event", "authcode", "initiator",
                                            ci, "responder", cr, "match", !strcmp(ci, cr)));
            else
                printf("authcode initiator %s, responder %s (%s)\n", ci, cr,
                       strcmp(ci, cr) ? "DIFFERENT" : "users confirm they match");
        }
    }
    if ((e = pl_noise_hs_split(d.hi, &d.si)) != PL_OK || (e = pl_noise_hs_split(d.hr, &d.sr)) != PL_OK) {
        rc = pl_cli_error(&out, e, "split: %s", pl_strerror(e));
        goto out;
    }
    char *topic = NULL;
    if ((e = pl_noise_session_content_topic(&topic, d.si, "pairlink-demo", "1")) != PL_OK) {
        rc = pl_cli_error(&out, e, "content topic: %s", pl_strerror(e));
        goto out;
    }
    if (out.json)
        pl_cli_emit(&out, json_pack("{s:s,s:s}", "event", "session", "content_topic", topic));
    else
        printf("session topic %s\n", topic);
    pl_free(topic);
    pl_noise_session *pairs[2][2] = {{d.si, d.sr}, {d.sr, d.si}};
    for (int i = 0; i < 2; i++) {
        uint8_t *wire = NULL, *got = NULL;
        size_t wl = 0, gl = 0;
        e = pl_noise_session_encrypt(pairs[i][0], (const uint8_t *)message, strlen(message), &wire, &wl);
        if (e == PL_OK) e = pl_noise_session_decrypt(pairs[i][1], wire, wl, &got, &gl);
        free(wire);
        if (e != PL_OK) {
            rc = pl_cli_error(&out, e, "transport: %s", pl_strerror(e));
            goto out;
        }
        if (out.json) {
            json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "event", "transport_message", "from",
                                  i == 0 ? "initiator" : "responder", "to",
                                  i == 0 ? "responder" : "initiator", "bytes", (json_int_t)wl);
            json_t *text = json_stringn((const char *)got, gl);
            json_object_set_new(o, "message", text ? text : json_null());
            pl_cli_emit(&out, o);
        } else {
            printf("%s -> %s: %zu bytes on the wire, decrypted \"%.*s\"\n",
                   i == 0 ? "initiator" : "responder", i == 0 ? "responder" : "initiator", wl,
                   (int)gl, (const char *)got);
        }
        pl_free_secret(got, gl ? gl : 1);
    }
    rc = 0;
out:
    demo_free(&d);
    return rc;
}

int pl_cli_noise(int argc, char **argv) {
    static const pl_cli_cmd cmds[] = {
        {"pair", cmd_pair, "pair two in-process parties (demo)"},
        {"replay", cmd_replay, "replay a transcript file and check every byte"},
        {"transcript", cmd_transcript, "write a fresh transcript (JSON) to stdout"},
    };
    return pl_cli_dispatch("pairlink noise", cmds, sizeof cmds / sizeof cmds[0], argc, argv);
}
