/* SPDX-License-Identifier: Apache-2.0 */
/* The C party of the live Waku Noise interop (issue 4, item 5): one
 * handshake and session with a js-noise party over stdin/stdout, using only
 * the public API of pairlink/noise.h. interop/noise-interop.mjs (live)
 * spawns it; tests/interop/noise_interop.sh runs that.
 *
 *   interop_noise_peer --pattern P --role initiator|responder [--rounds N]
 *                      [--prologue HEX] [--psk HEX]
 *
 * Line protocol, one line each, fields separated by one space, bytes in hex:
 *   hello <static_pub>           both, first (the out-of-band key exchange
 *                                K1K1/XK1 need; XX checks it afterwards)
 *   qr <qr-string> <nametag>     WakuPairing responder: the QR and the
 *                                nametag of message 1 that travels beside it
 *   hs <payloadv2>               a handshake message
 *   auth <8 digits>              both, after message 1: the codes must match
 *   topic <content-topic>        WakuPairing, C side: the topic from the QR
 *   msg <payloadv2>              a transport message
 *   bad <payloadv2>              a tampered transport message: must be
 *                                rejected with the session state unchanged
 *   done <h> <sent> <received>   both, at the end
 *   err <text>                   C side: this peer failed (also on stderr)
 * Message 1 of K1K1/XK1/XX/XXpsk0 uses the default all-zero nametag.
 * Handshake payloads of those patterns are fixed (message i: HS_LEN[i]
 * bytes, byte k = 31 i + k) so that both sides check them; WakuPairing
 * carries the RFC 43 commitments, which both sides open.
 *
 * Transport (both sides follow the same schedule): in round r the leader
 * (initiator on even rounds) sends a burst of 1 + r % 3 messages, the first
 * preceded by a "bad" copy; the follower reads the burst and echoes every
 * plaintext back in order, again with one "bad" first. This peer decrypts
 * every burst it reads in REVERSE order (the window of 50 nametags allows
 * it; js-noise must read in order) and checks that re-reading the first
 * message is refused as a replay.
 *
 * Exit 0 when everything matched; 1 on any failure (reason on stderr and as
 * an "err" line); 2 on bad usage. The peer's input is untrusted: lines are
 * bounded and every field checked. */
#include "pairlink/common.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"
#include "pairlink/noise.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE (2u * PL_NOISE_MAX_WIRE + 64u)
#define MAX_FIELDS 4
#define MAX_BURST 3
#define MAX_ROUNDS 1000
#define MAX_PLAIN 1500

static const size_t HS_LEN[3] = {5, 260, 520};

/* ------------------------------------------------------------ reporting */

static char g_err[512];

static bool fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool fail(const char *fmt, ...) {
    if (!g_err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_err, sizeof g_err, fmt, ap);
        va_end(ap);
    }
    return false;
}

/* ------------------------------------------------------------ lines */

typedef struct line {
    char *buf;
    size_t cap;
    const char *tag;
    char *f[MAX_FIELDS];
    int nf;
} line;

static void send_line(const char *tag, const char *a, const char *b, const char *c) {
    const char *fields[3] = {a, b, c};
    fputs(tag, stdout);
    for (size_t i = 0; i < 3 && fields[i]; i++) {
        fputc(' ', stdout);
        fputs(fields[i], stdout);
    }
    fputc('\n', stdout);
    fflush(stdout);
}

static bool send_hex(const char *tag, const uint8_t *b, size_t n) {
    char *h = malloc(2 * n + 1);
    if (!h) return fail("out of memory");
    sodium_bin2hex(h, 2 * n + 1, b, n);
    send_line(tag, h, NULL, NULL);
    free(h);
    return true;
}

/* Next line, split into a tag and fields. */
static bool read_line(line *l) {
    ssize_t n = getline(&l->buf, &l->cap, stdin);
    if (n < 0) return fail("the JS peer closed the pipe");
    if ((size_t)n > MAX_LINE) return fail("line of %zd bytes, above %u", n, MAX_LINE);
    if (n > 0 && l->buf[n - 1] == '\n') l->buf[--n] = '\0';
    if (strlen(l->buf) != (size_t)n) return fail("NUL byte in a line");
    l->nf = 0;
    char *save = NULL;
    l->tag = strtok_r(l->buf, " ", &save);
    if (!l->tag) return fail("empty line");
    for (char *t; (t = strtok_r(NULL, " ", &save));) {
        if (l->nf == MAX_FIELDS) return fail("'%.16s' line with too many fields", l->tag);
        l->f[l->nf++] = t;
    }
    return true;
}

static bool expect(line *l, const char *tag, int nfields) {
    if (!read_line(l)) return false;
    if (strcmp(l->tag, tag) || l->nf != nfields)
        return fail("expected a '%s' line with %d fields, got '%.16s' with %d", tag, nfields,
                    l->tag, l->nf);
    return true;
}

/* Hex field into a malloc'd buffer of at most max bytes (exact if exact). */
static bool unhex(const char *what, const char *s, size_t max, size_t exact, uint8_t **out,
                  size_t *len) {
    *out = NULL;
    *len = 0;
    size_t sl = strlen(s);
    if (sl % 2 || sl / 2 > max || (exact && sl / 2 != exact))
        return fail("%s: %zu hex digits, not a valid length", what, sl);
    uint8_t *b = malloc(sl / 2 ? sl / 2 : 1);
    if (!b) return fail("out of memory");
    size_t n = 0;
    if (sodium_hex2bin(b, sl / 2, s, sl, NULL, &n, NULL) != 0 || n != sl / 2) {
        free(b);
        return fail("%s: malformed hex", what);
    }
    *out = b;
    *len = n;
    return true;
}

static bool unhex_fixed(const char *what, const char *s, uint8_t *out, size_t n) {
    uint8_t *b;
    size_t len;
    if (!unhex(what, s, n, n, &b, &len)) return false;
    memcpy(out, b, n);
    free(b);
    return true;
}

static void to_hex(char *out, const uint8_t *b, size_t n) {
    sodium_bin2hex(out, 2 * n + 1, b, n);
}

/* ------------------------------------------------------------ the peer */

typedef struct buf {
    uint8_t *p;
    size_t n;
} buf;

typedef struct peer {
    pl_noise_pattern pattern;
    pl_noise_role role;
    unsigned long rounds;
    uint8_t *prologue; /* --prologue */
    size_t prologue_len;
    uint8_t psk[32];
    bool have_psk;
    uint8_t s_priv[32], s_pub[32], remote_pub[32];
    /* WakuPairing */
    char *qr_text;
    pl_noise_qr qr;
    uint8_t tag1[16];
    uint8_t e_priv[32];
    uint8_t my_rand[32];     /* r (responder) or s (initiator) */
    uint8_t my_commit[32];   /* initiator: H(sA || s) */
    uint8_t peer_commit[32]; /* responder: message 1's payload */
    char authcode[PL_NOISE_AUTHCODE_SIZE];
    pl_noise_hs *hs;
    pl_noise_session *session;
    line l;
    unsigned long sent, received, rejected;
} peer;

static void hs_payload(uint8_t *out, size_t i) {
    for (size_t k = 0; k < HS_LEN[i]; k++)
        out[k] = (uint8_t)(i * 31 + k);
}

static bool oob_exchange(peer *p) {
    char h[65];
    pl_x25519_keypair(p->s_pub, p->s_priv);
    to_hex(h, p->s_pub, 32);
    send_line("hello", h, NULL, NULL);
    bool pairing = p->pattern == PL_NOISE_WAKU_PAIRING;
    if (pairing && p->role == PL_NOISE_RESPONDER) {
        /* RFC 43: the QR shows eB and H(sB || r); message 1's nametag is
         * shown beside it. */
        pl_x25519_keypair(p->qr.ephemeral_pub, p->e_priv);
        snprintf(p->qr.app, sizeof p->qr.app, "pairlink-interop");
        snprintf(p->qr.version, sizeof p->qr.version, "0.1");
        snprintf(p->qr.shard, sizeof p->qr.shard, "3");
        pl_random(p->my_rand, 32);
        pl_noise_commit(p->qr.committed_static, p->s_pub, p->my_rand, 32);
        pl_random(p->tag1, 16);
        pl_err e = pl_noise_qr_encode(&p->qr_text, &p->qr);
        if (e != PL_OK) return fail("pl_noise_qr_encode: %s", pl_errname(e));
        char th[33];
        to_hex(th, p->tag1, 16);
        send_line("qr", p->qr_text, th, NULL);
    }
    if (!expect(&p->l, "hello", 1) || !unhex_fixed("hello", p->l.f[0], p->remote_pub, 32))
        return false;
    if (pairing && p->role == PL_NOISE_INITIATOR) {
        if (!expect(&p->l, "qr", 2)) return false;
        size_t n = strlen(p->l.f[0]);
        pl_err e = pl_noise_qr_parse(&p->qr, p->l.f[0], n);
        if (e != PL_OK) return fail("the JS QR does not parse: %s", pl_errname(e));
        if (!(p->qr_text = malloc(n + 1))) return fail("out of memory");
        memcpy(p->qr_text, p->l.f[0], n + 1);
        if (!unhex_fixed("qr nametag", p->l.f[1], p->tag1, 16)) return false;
        pl_random(p->my_rand, 32);
        pl_noise_commit(p->my_commit, p->s_pub, p->my_rand, 32);
    }
    return true;
}

static bool start(peer *p) {
    pl_noise_keys k = {p->s_priv, NULL, NULL, NULL, NULL};
    const uint8_t *prologue = p->prologue;
    size_t plen = p->prologue_len;
    switch (p->pattern) {
    case PL_NOISE_K1K1:
        k.remote_static_pub = p->remote_pub;
        break;
    case PL_NOISE_XK1:
        if (p->role == PL_NOISE_INITIATOR) k.remote_static_pub = p->remote_pub;
        break;
    case PL_NOISE_WAKU_PAIRING:
        if (p->role == PL_NOISE_INITIATOR)
            k.remote_ephemeral_pub = p->qr.ephemeral_pub;
        else
            k.ephemeral_priv = p->e_priv;
        prologue = (const uint8_t *)p->qr_text; /* the whole QR string */
        plen = strlen(p->qr_text);
        break;
    default:
        break;
    }
    pl_err e = pl_noise_hs_new(&p->hs, p->pattern, p->role, &k, prologue, plen,
                               p->pattern == PL_NOISE_XXPSK0 ? p->psk : NULL);
    if (e != PL_OK) return fail("pl_noise_hs_new: %s", pl_errname(e));
    return true;
}

/* Check a handshake payload that arrived in message i (0-based). */
static bool check_hs_payload(peer *p, size_t i, const uint8_t *pl, size_t n) {
    if (p->pattern != PL_NOISE_WAKU_PAIRING) {
        uint8_t want[520];
        hs_payload(want, i);
        if (n != HS_LEN[i] || memcmp(want, pl, n))
            return fail("handshake message %zu: payload differs (%zu bytes, expected %zu)", i + 1,
                        n, HS_LEN[i]);
        return true;
    }
    uint8_t rs[32];
    if (i == 0) { /* responder: H(sA || s), opened by message 3 */
        if (n != 32) return fail("message 1: commitment of %zu bytes", n);
        memcpy(p->peer_commit, pl, 32);
        return true;
    }
    if (pl_noise_hs_remote_static(p->hs, rs) != PL_OK)
        return fail("message %zu: no remote static key", i + 1);
    const uint8_t *c = i == 1 ? p->qr.committed_static : p->peer_commit;
    pl_err e = pl_noise_commit_check(c, rs, pl, n);
    if (e != PL_OK)
        return fail("message %zu: the JS static key does not open the %s commitment: %s", i + 1,
                    i == 1 ? "QR" : "message 1", pl_errname(e));
    return true;
}

static bool handshake(peer *p) {
    for (size_t i = 0;; i++) {
        pl_noise_action a = pl_noise_hs_action(p->hs);
        if (a == PL_NOISE_ACTION_SPLIT) break;
        if (i >= 3) return fail("handshake: more than 3 messages");
        bool pairing = p->pattern == PL_NOISE_WAKU_PAIRING;
        const uint8_t *tag = pairing && i == 0 ? p->tag1 : NULL;
        if (a == PL_NOISE_ACTION_WRITE) {
            uint8_t fixed[520];
            const uint8_t *pl = fixed;
            size_t n = 32;
            if (!pairing)
                hs_payload(fixed, i), n = HS_LEN[i];
            else
                pl = i == 0 ? p->my_commit : p->my_rand; /* H(sA||s), then r or s */
            uint8_t *wire = NULL;
            size_t wl = 0;
            pl_err e = pl_noise_hs_write(p->hs, tag, pl, n, &wire, &wl);
            if (e != PL_OK) return fail("message %zu: pl_noise_hs_write: %s", i + 1, pl_errname(e));
            bool ok = send_hex("hs", wire, wl);
            pl_free(wire);
            if (!ok) return false;
        } else if (a == PL_NOISE_ACTION_READ) {
            uint8_t *wire, *pl = NULL;
            size_t wl, n = 0;
            if (!expect(&p->l, "hs", 1) ||
                !unhex("hs", p->l.f[0], PL_NOISE_MAX_WIRE, 0, &wire, &wl))
                return false;
            pl_err e = pl_noise_hs_read(p->hs, wire, wl, tag, &pl, &n);
            free(wire);
            if (e != PL_OK)
                return fail("message %zu: pl_noise_hs_read rejects the JS message: %s", i + 1,
                            pl_errname(e));
            bool ok = check_hs_payload(p, i, pl, n);
            pl_free_secret(pl, n ? n : 1);
            if (!ok) return false;
        } else {
            return fail("handshake: unexpected action %d", (int)a);
        }
        if (i == 0) {
            pl_noise_hs_authcode(p->hs, p->authcode);
            send_line("auth", p->authcode, NULL, NULL);
            if (!expect(&p->l, "auth", 1)) return false;
            if (strcmp(p->l.f[0], p->authcode))
                return fail("authcode: C %s, JS %.16s", p->authcode, p->l.f[0]);
        }
    }
    pl_err e = pl_noise_hs_split(p->hs, &p->session);
    if (e != PL_OK) return fail("pl_noise_hs_split: %s", pl_errname(e));
    uint8_t rs[32];
    pl_noise_session_remote_static(p->session, rs);
    if (sodium_memcmp(rs, p->remote_pub, 32))
        return fail("the remote static key differs from the one the JS peer announced");
    if (p->pattern == PL_NOISE_WAKU_PAIRING) {
        char *topic = NULL;
        if ((e = pl_noise_qr_content_topic(&topic, &p->qr)) != PL_OK)
            return fail("pl_noise_qr_content_topic: %s", pl_errname(e));
        send_line("topic", topic, NULL, NULL);
        pl_free(topic);
    }
    return true;
}

/* ---- transport ---- */

static void free_bufs(buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (b[i].p) pl_free_secret(b[i].p, b[i].n ? b[i].n : 1);
        b[i].p = NULL;
        b[i].n = 0;
    }
}

static size_t rand_len(void) {
    static const size_t edge[] = {0, 1, 31, 32, 247, 248, 249, 495, 496, 497, 1000};
    if (randombytes_uniform(3))
        return edge[randombytes_uniform((uint32_t)(sizeof edge / sizeof edge[0]))];
    return randombytes_uniform(MAX_PLAIN + 1);
}

/* Any byte of a transport PayloadV2 except its 8-byte transport length
 * (bytes 18..25): js-noise 0.0.3 does not check that field. It takes
 * subarray(26, 26 + len), so a length that overstates the remaining bytes
 * still yields the whole ciphertext and the message is accepted. pairlink
 * rejects such a message (the length must match exactly); the JS peer's
 * "bad" lines, which may hit any byte, check that side. */
static size_t tamper_pos(size_t wl) {
    size_t pos = randombytes_uniform((uint32_t)(wl - 8));
    return pos < 18 ? pos : pos + 8;
}

static bool send_burst(peer *p, const buf *pts, size_t n) {
    for (size_t j = 0; j < n; j++) {
        uint8_t *wire = NULL;
        size_t wl = 0;
        pl_err e = pl_noise_session_encrypt(p->session, pts[j].p, pts[j].n, &wire, &wl);
        if (e != PL_OK) return fail("pl_noise_session_encrypt: %s", pl_errname(e));
        bool ok = true;
        if (j == 0) { /* a tampered copy first: one byte, any change */
            uint8_t *bad = malloc(wl);
            if (!bad)
                ok = fail("out of memory");
            else {
                memcpy(bad, wire, wl);
                bad[tamper_pos(wl)] ^= (uint8_t)(1 + randombytes_uniform(255));
                ok = send_hex("bad", bad, wl);
                free(bad);
            }
        }
        if (ok) ok = send_hex("msg", wire, wl);
        pl_free(wire);
        if (!ok) return false;
        p->sent++;
    }
    return true;
}

/* Session state as bytes, to prove a rejected message changed nothing. */
static bool state_of(peer *p, uint8_t **st, size_t *n) {
    pl_err e = pl_noise_session_serialize(p->session, st, n);
    if (e != PL_OK) return fail("pl_noise_session_serialize: %s", pl_errname(e));
    return true;
}

/* Read a burst of n messages (and the "bad" lines among them), then
 * decrypt it in reverse order into pts[0..n). */
static bool read_burst(peer *p, size_t n, buf *pts, const char *what) {
    buf wires[MAX_BURST] = {{0}};
    size_t got = 0;
    bool ok = true;
    while (ok && got < n) {
        uint8_t *w;
        size_t wl;
        if (!read_line(&p->l) || (strcmp(p->l.tag, "msg") && strcmp(p->l.tag, "bad")) ||
            p->l.nf != 1) {
            ok = g_err[0] ? false
                          : fail("%s: expected a 'msg' or 'bad' line, got '%.16s'", what, p->l.tag);
            break;
        }
        if (!unhex(p->l.tag, p->l.f[0], PL_NOISE_MAX_WIRE, 0, &w, &wl)) {
            ok = false;
            break;
        }
        if (!strcmp(p->l.tag, "msg")) {
            wires[got].p = w;
            wires[got++].n = wl;
            continue;
        }
        uint8_t *before = NULL, *after = NULL, *pl = NULL;
        size_t bn = 0, an = 0, pn = 0;
        ok = state_of(p, &before, &bn);
        if (ok) {
            pl_err e = pl_noise_session_decrypt(p->session, w, wl, &pl, &pn);
            if (e == PL_OK) {
                pl_free_secret(pl, pn ? pn : 1);
                ok = fail("%s: a tampered JS message was accepted", what);
            } else if ((ok = state_of(p, &after, &an)) &&
                       (an != bn || sodium_memcmp(before, after, bn))) {
                ok = fail("%s: a rejected message (%s) changed the session state", what,
                          pl_errname(e));
            }
        }
        if (ok) p->rejected++;
        if (before) pl_free_secret(before, bn);
        if (after) pl_free_secret(after, an);
        free(w);
    }
    for (size_t k = n; ok && k-- > 0;) {
        pl_err e =
            pl_noise_session_decrypt(p->session, wires[k].p, wires[k].n, &pts[k].p, &pts[k].n);
        if (e != PL_OK)
            ok = fail("%s: message %zu of %zu (read in reverse order) rejected: %s", what, k + 1, n,
                      pl_errname(e));
        else
            p->received++;
    }
    if (ok) { /* the first message again: a replay */
        uint8_t *pl = NULL;
        size_t pn = 0;
        pl_err e = pl_noise_session_decrypt(p->session, wires[0].p, wires[0].n, &pl, &pn);
        if (e != PL_ERR_NOISE_REPLAY) {
            if (e == PL_OK) pl_free_secret(pl, pn ? pn : 1);
            ok = fail("%s: a replayed message gave %s, not PL_ERR_NOISE_REPLAY", what,
                      pl_errname(e));
        }
    }
    for (size_t k = 0; k < n; k++)
        free(wires[k].p);
    return ok;
}

static bool transport(peer *p) {
    bool initiator = p->role == PL_NOISE_INITIATOR;
    for (unsigned long r = 0; r < p->rounds; r++) {
        bool leader = (r % 2 == 0) == initiator;
        size_t n = 1 + r % 3;
        char what[48];
        snprintf(what, sizeof what, "round %lu", r + 1);
        buf pts[MAX_BURST] = {{0}}, got[MAX_BURST] = {{0}};
        bool ok = true;
        if (leader) {
            for (size_t j = 0; ok && j < n; j++) {
                pts[j].n = rand_len();
                if (!(pts[j].p = malloc(pts[j].n ? pts[j].n : 1)))
                    ok = fail("out of memory");
                else
                    pl_random(pts[j].p, pts[j].n);
            }
            ok = ok && send_burst(p, pts, n) && read_burst(p, n, got, what);
            for (size_t j = 0; ok && j < n; j++)
                if (got[j].n != pts[j].n || memcmp(got[j].p, pts[j].p, pts[j].n))
                    ok = fail("%s: echo %zu from JS differs (%zu bytes, sent %zu)", what, j + 1,
                              got[j].n, pts[j].n);
        } else {
            ok = read_burst(p, n, got, what) && send_burst(p, got, n);
        }
        free_bufs(pts, n);
        free_bufs(got, n);
        if (!ok) return false;
    }
    return true;
}

static bool finish(peer *p) {
    uint8_t h[32], theirs[32];
    char hh[65], s1[24], s2[24];
    pl_noise_session_handshake_hash(p->session, h);
    to_hex(hh, h, 32);
    snprintf(s1, sizeof s1, "%lu", p->sent);
    snprintf(s2, sizeof s2, "%lu", p->received);
    send_line("done", hh, s1, s2);
    if (!expect(&p->l, "done", 3) || !unhex_fixed("done", p->l.f[0], theirs, 32)) return false;
    if (memcmp(h, theirs, 32)) return fail("final h differs between C and JS");
    if (strcmp(p->l.f[1], s2) || strcmp(p->l.f[2], s1))
        return fail("JS sent %.20s and received %.20s; C received %s and sent %s", p->l.f[1],
                    p->l.f[2], s2, s1);
    return true;
}

/* ------------------------------------------------------------ main */

static int usage(const char *why) {
    fprintf(stderr,
            "interop_noise_peer: %s\n"
            "usage: interop_noise_peer --pattern P --role initiator|responder [--rounds N]\n"
            "                          [--prologue HEX] [--psk HEX]\n",
            why);
    return 2;
}

int main(int argc, char **argv) {
    if (pl_init() != PL_OK) return 1;
    peer p;
    memset(&p, 0, sizeof p);
    p.rounds = 6;
    const char *pname = NULL, *role = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage("every option wants a value");
        const char *v = argv[++i];
        if (!strcmp(a, "--pattern"))
            pname = v;
        else if (!strcmp(a, "--role"))
            role = v;
        else if (!strcmp(a, "--rounds")) {
            char *end;
            p.rounds = strtoul(v, &end, 10);
            if (*end || !*v || *v == '-' || p.rounds > MAX_ROUNDS)
                return usage("--rounds wants 0..1000");
        } else if (!strcmp(a, "--prologue")) {
            free(p.prologue);
            if (!unhex("--prologue", v, PL_NOISE_MAX_PROLOGUE, 0, &p.prologue, &p.prologue_len))
                return usage(g_err);
        } else if (!strcmp(a, "--psk")) {
            if (!unhex_fixed("--psk", v, p.psk, 32)) return usage(g_err);
            p.have_psk = true;
        } else
            return usage("unknown option");
    }
    if (!pname || pl_noise_pattern_from_name(&p.pattern, pname) != PL_OK)
        return usage("--pattern wants K1K1, XK1, XX, XXpsk0 or WakuPairing");
    if (!role || (strcmp(role, "initiator") && strcmp(role, "responder")))
        return usage("--role wants initiator or responder");
    p.role = strcmp(role, "initiator") ? PL_NOISE_RESPONDER : PL_NOISE_INITIATOR;
    if ((p.pattern == PL_NOISE_XXPSK0) != p.have_psk)
        return usage("--psk is for XXpsk0, and required there");

    bool ok = oob_exchange(&p) && start(&p) && handshake(&p) && transport(&p) && finish(&p);
    if (!ok) {
        for (char *c = g_err; *c; c++)
            if (*c == '\n') *c = ' ';
        fprintf(stderr, "FAIL %s %s: %s\n", pname, role, g_err);
        send_line("err", g_err, NULL, NULL);
    } else {
        fprintf(stderr, "OK %s %s: authcode %s, %lu sent, %lu received, %lu tampered rejected\n",
                pname, role, p.authcode, p.sent, p.received, p.rejected);
    }
    pl_noise_hs_free(p.hs);
    pl_noise_session_free(p.session);
    pl_free(p.qr_text);
    free(p.prologue);
    free(p.l.buf);
    pl_wipe(&p, sizeof p);
    return ok ? 0 : 1;
}
