/* Checking a TiDB server's certificate from a blocking thread, for links
 * whose TLS client cannot check the name vecgate expects: libmariadb (3.3)
 * checks only the address it connects to and sends no SNI. The probe goes
 * through the MySQL handshake up to the end of TLS exactly as the pool's
 * sessions do (SNI, chain, name), and gives the certificate's fingerprint,
 * which the other client then requires before it sends any credential. */
#ifndef VECGATE_NET_TLS_PROBE_H
#define VECGATE_NET_TLS_PROBE_H

#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

/* SHA-1, as libmariadb 3.3's MARIADB_OPT_TLS_PEER_FP compares it. */
#define NET_TLS_FP_HEX 40

/* Connects to host:port, reads the greeting, sends an SSLRequest and does
 * the TLS handshake with ctx, sending server_name as SNI (unless it is an
 * address) and requiring a certificate that chains to ctx's CA and is
 * valid for server_name. All of it within timeout_ms. Then closes the
 * connection (the server sees a client leave before logging in). 0 with
 * the certificate's fingerprint in fp (NET_TLS_FP_HEX hex digits and a
 * NUL), or a negative errno with the reason in err: -ECONNREFUSED and the
 * like for the connection, -ETIMEDOUT, -EPROTO (not a MySQL server, no TLS
 * offered, refused with an ERR packet), -EACCES (the certificate). */
int net_tls_probe(const char *host, int port, SSL_CTX *ctx, const char *server_name,
                  uint64_t timeout_ms, char fp[NET_TLS_FP_HEX + 1], char *err,
                  size_t errlen) MUST_CHECK;

#endif
