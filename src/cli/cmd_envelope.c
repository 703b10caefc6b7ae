/* SPDX-License-Identifier: Apache-2.0 */
/* pairlink envelope seal | open */
#include "cli/cli.h"

#include "pairlink/codec.h"
#include "pairlink/crypto.h"
#include "pairlink/hash.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keys come from the command line as 64 hex characters. */
static pl_err key_arg(uint8_t out[32], const char *hex) {
    return pl_hex_decode_exact(out, 32, hex, strlen(hex));
}

static int seal_main(int argc, char **argv) {
    static const struct option opts[] = {{"key", required_argument, 0, 'k'},
                                         {"type", required_argument, 0, 't'},
                                         {"sender-priv", required_argument, 0, 's'},
                                         {"receiver-pub", required_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *key_hex = NULL, *spriv_hex = NULL, *rpub_hex = NULL;
    pl_cli_out out = {.cmd = "envelope seal"};
    int type = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:t:s:r:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key_hex = optarg; break;
        case 'j':
            out.json = true;
            break;
        case 't':
            if (strcmp(optarg, "0") && strcmp(optarg, "1") && strcmp(optarg, "2"))
                return pl_cli_usage_error("envelope seal", "--type is 0, 1 or 2");
            type = atoi(optarg);
            break;
        case 's': spriv_hex = optarg; break;
        case 'r': rpub_hex = optarg; break;
        case 'h':
            printf("usage: pairlink envelope seal --key HEX [--json] MESSAGE\n"
                   "       pairlink envelope seal --type 1 --sender-priv HEX --receiver-pub HEX "
                   "MESSAGE\n"
                   "       pairlink envelope seal --type 2 MESSAGE\n\n"
                   "Seal MESSAGE as a WalletConnect envelope and print it in base64 (with --json:\n"
                   "{\"event\":\"sealed\",\"type\",\"envelope\"}).\n"
                   "type 0: symmetric, --key is the 32-byte symKey in hex.\n"
                   "type 1: the key is derived from the sender's X25519 private key and the\n"
                   "        receiver's public key (HKDF-SHA256 of the shared secret).\n"
                   "type 2: unencrypted (link mode only).\n");
            return 0;
        default: return pl_cli_usage_error("envelope seal", "bad option");
        }
    }
    if (optind != argc - 1) return pl_cli_usage_error("envelope seal", "expects one MESSAGE");
    const char *msg = argv[optind];
    uint8_t key[32], spriv[32], spub[32], rpub[32];
    pl_envelope_params p = {.type = type};
    pl_err e = PL_OK;
    if (type == 0) {
        if (!key_hex) return pl_cli_usage_error("envelope seal", "type 0 needs --key");
        if ((e = key_arg(key, key_hex)) != PL_OK)
            return pl_cli_error(&out, e, "--key: not 32 bytes of hex: %s", pl_strerror(e));
    } else if (type == 1) {
        if (!spriv_hex || !rpub_hex)
            return pl_cli_usage_error("envelope seal", "type 1 needs --sender-priv and --receiver-pub");
        if ((e = key_arg(spriv, spriv_hex)) != PL_OK)
            return pl_cli_error(&out, e, "--sender-priv: not 32 bytes of hex: %s", pl_strerror(e));
        if ((e = key_arg(rpub, rpub_hex)) != PL_OK)
            return pl_cli_error(&out, e, "--receiver-pub: not 32 bytes of hex: %s", pl_strerror(e));
        pl_x25519_public(spub, spriv);
        e = pl_wc_session_key(key, spriv, rpub);
        pl_wipe(spriv, sizeof spriv);
        if (e != PL_OK) return pl_cli_error(&out, e, "deriving the type 1 key: %s", pl_strerror(e));
        p.sender_pub = spub;
    }
    char *sealed = NULL;
    e = pl_envelope_seal(&sealed, type == 2 ? NULL : key, (const uint8_t *)msg, strlen(msg), &p);
    pl_wipe(key, sizeof key);
    if (e != PL_OK) return pl_cli_error(&out, e, "sealing: %s", pl_strerror(e));
    if (out.json)
        pl_cli_emit(
            &out, json_pack("{s:s,s:i,s:s}", "event", "sealed", "type", type, "envelope", sealed));
    else
        printf("%s\n", sealed);
    pl_free(sealed);
    return 0;
}

static int open_main(int argc, char **argv) {
    static const struct option opts[] = {{"key", required_argument, 0, 'k'},
                                         {"receiver-priv", required_argument, 0, 'r'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *key_hex = NULL, *rpriv_hex = NULL;
    pl_cli_out out = {.cmd = "envelope open"};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "k:r:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'k': key_hex = optarg; break;
        case 'j':
            out.json = true;
            break;
        case 'r': rpriv_hex = optarg; break;
        case 'h':
            printf(
                "usage: pairlink envelope open --key HEX [--json] BASE64\n"
                "       pairlink envelope open --receiver-priv HEX BASE64   (type 1)\n\n"
                "Open a WalletConnect envelope and print the message. A wrong key or any\n"
                "changed byte is an error (PL_ERR_DECRYPT); nothing unauthenticated is printed.\n"
                "--json: {\"event\":\"opened\",\"type\",\"message\" (null unless UTF-8 text),\n"
                "\"message_hex\"}.\n");
            return 0;
        default: return pl_cli_usage_error("envelope open", "bad option");
        }
    }
    if (optind != argc - 1) return pl_cli_usage_error("envelope open", "expects one BASE64 envelope");
    const char *b64 = argv[optind];
    size_t b64_len = strlen(b64);
    pl_envelope_info info;
    pl_err e = pl_envelope_peek(&info, b64, b64_len);
    if (e != PL_OK) return pl_cli_error(&out, e, "reading the envelope: %s", pl_strerror(e));
    uint8_t *msg = NULL;
    size_t len = 0;
    if (info.type == 1 && rpriv_hex) {
        uint8_t rpriv[32];
        if ((e = key_arg(rpriv, rpriv_hex)) != PL_OK)
            return pl_cli_error(&out, e, "--receiver-priv: not 32 bytes of hex: %s",
                                pl_strerror(e));
        e = pl_envelope_open_type1(&msg, &len, NULL, rpriv, b64, b64_len);
        pl_wipe(rpriv, sizeof rpriv);
    } else if (info.type == 2) {
        e = pl_envelope_open(&msg, &len, NULL, NULL, b64, b64_len);
    } else {
        if (!key_hex)
            return pl_cli_usage_error("envelope open", "type %d needs --key%s", info.type,
                                      info.type == 1 ? " or --receiver-priv" : "");
        uint8_t key[32];
        if ((e = key_arg(key, key_hex)) != PL_OK)
            return pl_cli_error(&out, e, "--key: not 32 bytes of hex: %s", pl_strerror(e));
        e = pl_envelope_open(&msg, &len, NULL, key, b64, b64_len);
        pl_wipe(key, sizeof key);
    }
    if (e != PL_OK) return pl_cli_error(&out, e, "opening: %s", pl_strerror(e));
    if (out.json) {
        char *hex = malloc(2 * len + 1);
        if (hex) pl_hex_encode(hex, 2 * len + 1, msg, len);
        json_t *text = json_stringn((const char *)msg, len); /* NULL unless valid UTF-8 */
        json_t *o = json_object();
        json_object_set_new(o, "event", json_string("opened"));
        json_object_set_new(o, "type", json_integer(info.type));
        json_object_set_new(o, "message", text ? text : json_null());
        json_object_set_new(o, "message_hex", json_string(hex ? hex : ""));
        pl_cli_emit(&out, o);
        if (hex) pl_free_secret(hex, 2 * len + 1);
    } else {
        fwrite(msg, 1, len, stdout);
        fputc('\n', stdout);
    }
    pl_free_secret(msg, len);
    return 0;
}

int pl_cli_envelope(int argc, char **argv) {
    static const pl_cli_cmd sub[] = {
        {"open", open_main, "open a WalletConnect envelope"},
        {"seal", seal_main, "seal a message into a WalletConnect envelope"},
    };
    return pl_cli_dispatch("pairlink envelope", sub, sizeof sub / sizeof sub[0], argc, argv);
}
