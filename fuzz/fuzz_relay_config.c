/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the relay's configuration file parser
 * (pl__relay_config_load_text) and the reload comparison.
 *
 * Input: a config file's bytes. Checks, besides "no crash, no leak, no UB":
 *  - every failure is a named config error (or TOO_LARGE, NOMEM) with a
 *    message that names the file, and a line number unless the whole file
 *    was refused;
 *  - what parses stays within its bounds (listeners, public URLs,
 *    allowances), and the diff against the defaults names exactly as many
 *    keys as it counts (live + restart lists);
 *  - parsing the same bytes twice gives configs that do not differ. */
#include "relay/relay_config.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool cond) {
    if (!cond) abort();
}

static size_t words(const char *s) {
    size_t n = 0;
    for (bool in = false; *s; s++) {
        if (*s != ' ' && !in) n++;
        in = *s != ' ';
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 65536) return 0;
    pl__relay_config a, b, def;
    char why[512], live[2048], restart[2048];
    pl__relay_config_init(&a);
    pl__relay_config_init(&b);
    pl__relay_config_init(&def);
    pl_err e = pl__relay_config_load_text(&a, "f.conf", (const char *)data, size, why, sizeof why);
    if (e != PL_OK) {
        check(e == PL_ERR_CONFIG_KEY || e == PL_ERR_CONFIG_VALUE || e == PL_ERR_TOO_LARGE ||
              e == PL_ERR_NOMEM);
        check(e == PL_ERR_NOMEM || !strncmp(why, "f.conf:", 7));
    } else {
        check(a.nlisten <= PL__RELAY_LISTEN_MAX && a.npublic_url <= PL__RELAY_AUD_MAX &&
              a.nallowances <= PL__RELAY_ALLOWANCE_MAX && a.nallow_keys <= PL__RELAY_ALLOW_MAX);
        check(pl__relay_config_load_text(&b, "f.conf", (const char *)data, size, why, sizeof why) ==
              PL_OK);
        /* no allow-file is read here: the fuzzer's paths are not opened */
        a.allow_file[0] = b.allow_file[0] = '\0';
        pl_err fa = pl__relay_config_finish(&a, why, sizeof why);
        pl_err fb = pl__relay_config_finish(&b, why, sizeof why);
        check(fa == fb);
        check(pl__relay_config_diff(&a, &b, live, sizeof live, restart, sizeof restart) == 0);
        check(pl__relay_config_finish(&def, why, sizeof why) == PL_OK);
        size_t n = pl__relay_config_diff(&def, &a, live, sizeof live, restart, sizeof restart);
        check(n == words(live) + words(restart));
    }
    pl__relay_config_free(&a);
    pl__relay_config_free(&b);
    pl__relay_config_free(&def);
    return 0;
}
