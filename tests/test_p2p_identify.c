/* SPDX-License-Identifier: Apache-2.0 */
/* identify and ping codecs, length-prefixed framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libp2p.pb-c.h"
#include "p2p/identify.h"
#include "p2p/key.h"
#include "pairlink/codec.h"
#include "support/support.h"

static int setup(void **state) {
    (void)state;
    assert_int_equal(pl_init(), PL_OK);
    return 0;
}

typedef struct local {
    pl_p2p_key *key;
    uint8_t kp[PL__P2P_PUBKEY_PROTO_MAX];
    pl__ma addrs[2], observed;
    pl__identify_local l;
    pl_p2p_peer_id peer;
} local;

static const char *const protos[] = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", "/vac/waku/relay/2.0.0"};

static void local_init(local *x) {
    memset(x, 0, sizeof *x);
    assert_int_equal(pl_p2p_key_generate(&x->key, PL_P2P_KEY_SECP256K1), PL_OK);
    pl__p2p_pubkey pk;
    pl__p2p_key_public(x->key, &pk);
    pl_p2p_key_peer_id(x->key, &x->peer);
    assert_int_equal(pl__ma_parse(&x->addrs[0], "/ip4/127.0.0.1/tcp/60000", 24), PL_OK);
    assert_int_equal(pl__ma_parse(&x->addrs[1], "/ip6/::1/tcp/60001", 18), PL_OK);
    assert_int_equal(pl__ma_parse(&x->observed, "/ip4/192.0.2.7/tcp/4444", 23), PL_OK);
    x->l = (pl__identify_local){
        .public_key = x->kp,
        .public_key_len = pl__p2p_pubkey_encode(&pk, x->kp),
        .listen_addrs = x->addrs,
        .nlisten_addrs = 2,
        .protocols = protos,
        .nprotocols = 3,
        .observed_addr = &x->observed,
        .agent_version = "pairlink/test",
    };
}

static void test_roundtrip(void **state) {
    (void)state;
    local x;
    local_init(&x);
    uint8_t *m = NULL;
    size_t len = 0;
    assert_int_equal(pl__identify_encode(&x.l, &m, &len), PL_OK);
    const uint8_t *msg;
    size_t ml, used;
    assert_int_equal(pl__lp_parse(m, len, PL__ID_MAX_MESSAGE, &msg, &ml, &used), PL_OK);
    assert_int_equal(used, len);
    /* Field order is by number (deterministic): publicKey first. */
    assert_int_equal(msg[0], 0x0a);
    pl__identify_info *info = NULL;
    assert_int_equal(pl__identify_decode(&info, msg, ml, &x.peer), PL_OK);
    const pl_p2p_identify *i = &info->info;
    assert_string_equal(i->protocol_version, "ipfs/0.1.0");
    assert_string_equal(i->agent_version, "pairlink/test");
    assert_int_equal(i->nprotocols, 3);
    for (size_t k = 0; k < 3; k++) assert_string_equal(i->protocols[k], protos[k]);
    assert_int_equal(i->nlisten_addrs, 2);
    assert_string_equal(i->listen_addrs[0], "/ip4/127.0.0.1/tcp/60000");
    assert_string_equal(i->listen_addrs[1], "/ip6/::1/tcp/60001");
    assert_string_equal(i->observed_addr, "/ip4/192.0.2.7/tcp/4444");
    pl__identify_free(info);

    /* Another peer's key in identify: refused. */
    pl_p2p_key *o = NULL;
    assert_int_equal(pl_p2p_key_generate(&o, PL_P2P_KEY_ED25519), PL_OK);
    pl_p2p_peer_id other;
    pl_p2p_key_peer_id(o, &other);
    info = (pl__identify_info *)1;
    assert_int_equal(pl__identify_decode(&info, msg, ml, &other), PL_ERR_P2P_PEER_MISMATCH);
    assert_null(info);
    pl_p2p_key_free(o);
    free(m);
    pl_p2p_key_free(x.key);
}

/* Build an Identify by hand with protobuf-c for the odd cases. */
static uint8_t *pack(Libp2p__Identify *m, size_t *len) {
    *len = libp2p__identify__get_packed_size(m);
    uint8_t *b = malloc(*len ? *len : 1);
    libp2p__identify__pack(m, b);
    return b;
}

static void test_lenient_and_strict(void **state) {
    (void)state;
    /* Empty message: fine, everything empty. */
    pl__identify_info *info = NULL;
    assert_int_equal(pl__identify_decode(&info, NULL, 0, NULL), PL_OK);
    assert_string_equal(info->info.agent_version, "");
    assert_string_equal(info->info.observed_addr, "");
    assert_int_equal(info->info.nprotocols, 0);
    pl__identify_free(info);

    /* Unusable protocol ids and addresses are left out. */
    Libp2p__Identify m = LIBP2P__IDENTIFY__INIT;
    char *ps[] = {"/ok/1.0.0", "/bad\nline", "", "/also/ok"};
    m.n_protocols = 4;
    m.protocols = ps;
    ProtobufCBinaryData addrs[3] = {
        {8, (uint8_t *)"\x04\x7f\x00\x00\x01\x06\x0f\xa1"}, /* /ip4/127.0.0.1/tcp/4001 */
        {3, (uint8_t *)"\xff\xff\x01"},                     /* unknown protocol */
        {7, (uint8_t *)"\x04\x7f\x00\x00\x01\x06\x0f"},     /* truncated */
    };
    m.n_listenaddrs = 3;
    m.listenaddrs = addrs;
    m.has_observedaddr = 1;
    m.observedaddr = addrs[1];
    size_t len;
    uint8_t *b = pack(&m, &len);
    assert_int_equal(pl__identify_decode(&info, b, len, NULL), PL_OK);
    assert_int_equal(info->info.nprotocols, 2);
    assert_string_equal(info->info.protocols[0], "/ok/1.0.0");
    assert_string_equal(info->info.protocols[1], "/also/ok");
    assert_int_equal(info->info.nlisten_addrs, 1);
    assert_string_equal(info->info.listen_addrs[0], "/ip4/127.0.0.1/tcp/4001");
    assert_string_equal(info->info.observed_addr, "");
    pl__identify_free(info);
    free(b);

    /* An agent that is not UTF-8. */
    Libp2p__Identify u = LIBP2P__IDENTIFY__INIT;
    u.agentversion = "bad \xff agent";
    b = pack(&u, &len);
    info = (pl__identify_info *)1;
    assert_int_equal(pl__identify_decode(&info, b, len, NULL), PL_ERR_P2P_PROTOBUF);
    assert_null(info);
    free(b);

    /* Too many protocols; too long an agent; too large a message. */
    Libp2p__Identify t = LIBP2P__IDENTIFY__INIT;
    char **many = malloc((PL__ID_MAX_PROTOCOLS + 1) * sizeof *many);
    for (size_t i = 0; i <= PL__ID_MAX_PROTOCOLS; i++) many[i] = "/p";
    t.n_protocols = PL__ID_MAX_PROTOCOLS + 1;
    t.protocols = many;
    b = pack(&t, &len);
    assert_int_equal(pl__identify_decode(&info, b, len, NULL), PL_ERR_TOO_LARGE);
    free(b);
    free(many);
    char *agent = malloc(PL__ID_MAX_STRING + 2);
    memset(agent, 'a', PL__ID_MAX_STRING + 1);
    agent[PL__ID_MAX_STRING + 1] = '\0';
    Libp2p__Identify a = LIBP2P__IDENTIFY__INIT;
    a.agentversion = agent;
    b = pack(&a, &len);
    assert_int_equal(pl__identify_decode(&info, b, len, NULL), PL_ERR_TOO_LARGE);
    free(b);
    free(agent);
    uint8_t *huge = calloc(1, PL__ID_MAX_MESSAGE + 1);
    assert_int_equal(pl__identify_decode(&info, huge, PL__ID_MAX_MESSAGE + 1, NULL), PL_ERR_TOO_LARGE);
    free(huge);
    /* Not a protobuf. */
    assert_int_equal(pl__identify_decode(&info, (const uint8_t *)"\x0a\xff", 2, NULL),
                     PL_ERR_P2P_PROTOBUF);
}

static void test_length_prefix(void **state) {
    (void)state;
    const uint8_t *msg = (const uint8_t *)1;
    size_t ml = 1, used = 1;
    assert_int_equal(pl__lp_parse((const uint8_t *)"\x03" "ab", 3, 100, &msg, &ml, &used),
                     PL_ERR_TRUNCATED);
    assert_null(msg);
    assert_int_equal(used, 0);
    assert_int_equal(pl__lp_parse((const uint8_t *)"\x03" "abcd", 5, 100, &msg, &ml, &used), PL_OK);
    assert_int_equal(ml, 3);
    assert_int_equal(used, 4);
    assert_memory_equal(msg, "abc", 3);
    assert_int_equal(pl__lp_parse((const uint8_t *)"\x80", 1, 100, &msg, &ml, &used), PL_ERR_TRUNCATED);
    assert_int_equal(pl__lp_parse((const uint8_t *)"\xe5\x01", 2, 100, &msg, &ml, &used),
                     PL_ERR_TOO_LARGE);
    assert_int_equal(pl__lp_parse((const uint8_t *)"\x80\x00", 2, 100, &msg, &ml, &used),
                     PL_ERR_BAD_VARINT);
    assert_int_equal(pl__lp_parse((const uint8_t *)"\x00", 1, 100, &msg, &ml, &used), PL_OK);
    assert_int_equal(ml, 0);
    assert_int_equal(used, 1);
}

static void test_ping(void **state) {
    (void)state;
    pl__ping p;
    uint8_t r[32];
    for (int i = 0; i < 32; i++) r[i] = (uint8_t)(i * 7);
    pl__ping_start(&p, r);
    size_t used;
    bool done;
    assert_int_equal(pl__ping_recv(&p, r, 10, &used, &done), PL_OK);
    assert_false(done);
    uint8_t rest[40];
    memcpy(rest, r + 10, 22);
    memset(rest + 22, 0xee, 18);
    assert_int_equal(pl__ping_recv(&p, rest, 40, &used, &done), PL_OK);
    assert_int_equal(used, 22);
    assert_true(done);
    pl__ping_start(&p, r);
    r[31] ^= 1;
    assert_int_equal(pl__ping_recv(&p, r, 32, &used, &done), PL_ERR_P2P_FRAME);
    assert_false(done);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_lenient_and_strict),
        cmocka_unit_test(test_length_prefix),
        cmocka_unit_test(test_ping),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
