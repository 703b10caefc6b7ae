/* The NATS JetStream backend of the relay (--cluster): see relay_backend.h
 * and docs/relay.md "Cluster". */
#include "relay/relay_backend.h"

#include "core/internal.h"

#ifndef PL_HAVE_NATS

bool pl__relay_backend_nats_available(void) {
    return false;
}

pl_err pl__relay_backend_nats(pl__relay_backend **out, uv_loop_t *loop,
                              const pl__relay_nats_opts *opts, const pl__relay_backend_sink *sink) {
    PL_REQUIRE(out && loop && opts && sink);
    *out = NULL;
    return PL_ERR_NO_CLUSTER;
}

#endif
