/* SPDX-License-Identifier: Apache-2.0 */
/* The relay's authentication policy: see auth.h. */
#include "relay/auth.h"

#include "core/internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *pl__relay_auth_bearer(const char *header) {
    if (!header || strlen(header) <= 7 || strncasecmp(header, "Bearer ", 7) != 0) return NULL;
    return header + 7;
}

/* The normal form of a ws:// or wss:// URL into out (size PL_JWT_AUD_MAX).
 * strict: a public URL (no query allowed); otherwise an aud, whose query
 * is dropped. false when it is not such a URL. */
static bool normalise(char out[PL_JWT_AUD_MAX], const char *url, bool strict) {
    size_t len = strlen(url);
    if (len == 0 || len >= PL_JWT_AUD_MAX) return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f || url[i] == '#')
            return false;
    bool tls;
    const char *p;
    if (!strncasecmp(url, "wss://", 6)) {
        tls = true;
        p = url + 6;
    } else if (!strncasecmp(url, "ws://", 5)) {
        tls = false;
        p = url + 5;
    } else {
        return false;
    }
    size_t alen = strcspn(p, "/?");
    if (alen == 0 || memchr(p, '@', alen)) return false;
    const char *path = p + alen;
    size_t plen = strcspn(path, "?");
    if (strict && path[plen]) return false;
    /* authority: lowercase, the default port dropped */
    char auth[PL_JWT_AUD_MAX];
    for (size_t i = 0; i < alen; i++)
        auth[i] = (char)tolower((unsigned char)p[i]);
    auth[alen] = '\0';
    char *colon = strrchr(auth, ':'), *rb = strrchr(auth, ']');
    if (colon && (!rb || colon > rb) && !strcmp(colon, tls ? ":443" : ":80")) *colon = '\0';
    if (!auth[0] || auth[0] == ':') return false;
    if (plen && path[plen - 1] == '/') plen--; /* "/" and "/v2/" as "" and "/v2" */
    int n = snprintf(out, PL_JWT_AUD_MAX, "%s://%s%.*s", tls ? "wss" : "ws", auth, (int)plen, path);
    return n > 0 && n < PL_JWT_AUD_MAX;
}

pl_err pl__relay_audience_add(pl__relay_audience *a, const char *url) {
    PL_REQUIRE(a && url);
    char norm[PL_JWT_AUD_MAX];
    if (strlen(url) >= PL_JWT_AUD_MAX) return PL_ERR_TOO_LARGE;
    if (!normalise(norm, url, true)) return PL_ERR_BAD_URL;
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->url[i], norm)) return PL_OK;
    if (a->n == PL__RELAY_AUD_MAX) return PL_ERR_TOO_LARGE;
    memcpy(a->url[a->n++], norm, sizeof norm);
    return PL_OK;
}

bool pl__relay_host_is_loopback(const char *host) {
    return host && (!strncmp(host, "127.", 4) || !strcasecmp(host, "localhost") ||
                    !strcmp(host, "[::1]") || !strcmp(host, "::1"));
}

pl_err pl__relay_audience_default(pl__relay_audience *a, const char *host, int port, bool tls) {
    PL_REQUIRE(a && host);
    const char *scheme = tls ? "wss" : "ws";
    char url[PL_JWT_AUD_MAX];
    const char *hosts[3] = {host, NULL, NULL};
    bool v6 = host[0] == '[';
    if (pl__relay_host_is_loopback(host) || !strcmp(host, "0.0.0.0") || !strcmp(host, "[::]")) {
        /* an IPv6 listener is reached on [::1] (and localhost), not 127.0.0.1 */
        hosts[1] = v6 ? "[::1]" : "127.0.0.1";
        hosts[2] = "localhost";
    }
    for (size_t i = 0; i < 3; i++) {
        if (!hosts[i] || !strcmp(hosts[i], "0.0.0.0") || !strcmp(hosts[i], "[::]")) continue;
        snprintf(url, sizeof url, "%s://%s:%d", scheme, hosts[i], port);
        PL_TRY(pl__relay_audience_add(a, url));
    }
    return PL_OK;
}

bool pl__relay_audience_match(const pl__relay_audience *a, const char *aud) {
    PL_REQUIRE(a && aud);
    char norm[PL_JWT_AUD_MAX];
    if (!normalise(norm, aud, false)) return false;
    for (size_t i = 0; i < a->n; i++)
        if (!strcmp(a->url[i], norm)) return true;
    return false;
}

pl_err pl__relay_auth_verify(pl_jwt_claims *claims, const char *jwt, size_t len,
                             const pl__relay_audience *aud, int64_t now_s) {
    PL_REQUIRE(claims && jwt && aud);
    /* Signature and time first (pl_jwt_verify), then the audience here:
     * the comparison is on normal forms, which pl_jwt_verify's exact match
     * does not do. */
    pl_err e = pl_jwt_verify(claims, jwt, len, NULL, now_s, PL__RELAY_JWT_LEEWAY_S);
    if (e != PL_OK) return e;
    if (!pl__relay_audience_match(aud, claims->aud)) {
        memset(claims, 0, sizeof *claims);
        return PL_ERR_JWT_AUDIENCE;
    }
    return PL_OK;
}
