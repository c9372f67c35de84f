/* The certificate check of tls_probe.h: plain sockets with poll() against
 * one deadline, OpenSSL on the socket itself. */
#include "net/tls_probe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/buf.h"
#include "core/clock.h"
#include "proto/handshake.h"
#include "proto/mysql.h"
#include "proto/packet.h"
#include "proto/packets.h"

/* A greeting is a few dozen bytes; anything this long is not one. */
#define GREETING_MAX 4096

/* What the probe declares in its SSLRequest: enough for any server to go
 * on to TLS (it never logs in). */
#define PROBE_CAPS                                                                                 \
	(PROTO_CLIENT_LONG_PASSWORD | PROTO_CLIENT_PROTOCOL_41 | PROTO_CLIENT_SECURE_CONNECTION |  \
	 PROTO_CLIENT_PLUGIN_AUTH)

static int probe_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int probe_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

/* Waits for events on fd until deadline (monotonic ms): 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = core_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)(deadline - now > 60000 ? 60000 : deadline - now));
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline, int *fd_out)
{
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                ai->ai_protocol);
	if (fd < 0)
		return -errno;
	int rc = 0;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		rc = errno == EINPROGRESS ? 0 : -errno;
		if (rc == 0)
			rc = wait_fd(fd, POLLOUT, deadline);
		if (rc == 0) {
			int e = 0;
			socklen_t len = sizeof(e);
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
				e = errno;
			rc = -e;
		}
	}
	if (rc < 0) {
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

static int read_full(int fd, uint8_t *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		ssize_t got = read(fd, p, n);
		if (got > 0) {
			p += got;
			n -= (size_t)got;
			continue;
		}
		if (got == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(fd, POLLIN, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n, uint64_t deadline)
{
	while (n > 0) {
		ssize_t put = send(fd, p, n, MSG_NOSIGNAL);
		if (put > 0) {
			p += put;
			n -= (size_t)put;
			continue;
		}
		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		int rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* The greeting up to the SSLRequest. */
static int mysql_part(int fd, uint64_t deadline, char *err, size_t errlen)
{
	uint8_t hdr[PROTO_HDR], payload[GREETING_MAX];
	int rc = read_full(fd, hdr, sizeof(hdr), deadline);
	if (rc < 0)
		return probe_fail(err, errlen, rc, "reading the greeting: %s", strerror(-rc));
	size_t len = hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16;
	if (len == 0 || len > sizeof(payload))
		return probe_fail(err, errlen, -EPROTO, "not a MySQL greeting (%zu bytes)", len);
	if ((rc = read_full(fd, payload, len, deadline)) < 0)
		return probe_fail(err, errlen, rc, "reading the greeting: %s", strerror(-rc));
	if (payload[0] == PROTO_ERR) {
		struct proto_err e;
		if (proto_parse_err(payload, len, PROTO_CLIENT_PROTOCOL_41, &e) < 0)
			return probe_fail(err, errlen, -EPROTO, "refused with an unreadable error");
		return probe_fail(err, errlen, -EPROTO, "refused: %u %.*s", e.code, (int)e.msg_len,
		                  e.msg);
	}
	struct proto_greeting g;
	if (proto_parse_greeting(payload, len, &g) < 0)
		return probe_fail(err, errlen, -EPROTO, "unreadable greeting");
	if (!(g.caps & PROTO_CLIENT_SSL))
		return probe_fail(err, errlen, -EPROTO, "server does not offer TLS");
	struct buf req;
	buf_init(&req);
	uint8_t seq = (uint8_t)(hdr[3] + 1);
	rc = proto_write_ssl_request(&req, &seq, (PROBE_CAPS & g.caps) | PROTO_CLIENT_SSL, 1u << 24,
	                             g.charset);
	if (rc == 0)
		rc = write_full(fd, req.data, req.len, deadline);
	buf_free(&req);
	if (rc < 0)
		return probe_fail(err, errlen, rc, "sending the SSLRequest: %s", strerror(-rc));
	return 0;
}

static bool ip_literal(const char *s)
{
	unsigned char tmp[sizeof(struct in6_addr)];
	return inet_pton(AF_INET, s, tmp) == 1 || inet_pton(AF_INET6, s, tmp) == 1;
}

static int tls_part(int fd, SSL_CTX *ctx, const char *name, uint64_t deadline,
                    char fp[NET_TLS_FP_HEX + 1], char *err, size_t errlen)
{
	ERR_clear_error();
	SSL *ssl = SSL_new(ctx);
	if (!ssl)
		return probe_fail(err, errlen, -ENOMEM, "TLS: %s", net_tls_error());
	int rc = 0;
	bool ip = ip_literal(name);
	X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* RFC 6066: SNI carries host names only, never addresses. */
	if ((!ip && SSL_set_tlsext_host_name(ssl, name) != 1) ||
	    (ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name)
	        : X509_VERIFY_PARAM_set1_host(param, name, 0)) != 1 ||
	    SSL_set_fd(ssl, fd) != 1) {
		rc = probe_fail(err, errlen, -EINVAL, "TLS: cannot check the name '%s'", name);
		goto out;
	}
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	for (;;) {
		int r = SSL_connect(ssl);
		if (r == 1)
			break;
		int e = SSL_get_error(ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			rc = wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
			if (rc < 0) {
				probe_fail(err, errlen, rc, "TLS handshake: %s", strerror(-rc));
				goto out;
			}
			continue;
		}
		long v = SSL_get_verify_result(ssl);
		if (v != X509_V_OK)
			rc = probe_fail(err, errlen, -EACCES, "certificate for '%s': %s", name,
			                X509_verify_cert_error_string(v));
		else
			rc = probe_fail(err, errlen, -EPROTO, "TLS handshake: %s", net_tls_error());
		goto out;
	}
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	X509 *cert = SSL_get1_peer_certificate(ssl);
#else
	X509 *cert = SSL_get_peer_certificate(ssl);
#endif
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!cert || X509_digest(cert, EVP_sha1(), md, &mdlen) != 1 ||
	    mdlen * 2 != NET_TLS_FP_HEX) {
		rc = probe_fail(err, errlen, -EACCES, "no usable certificate from the server");
	} else {
		for (unsigned i = 0; i < mdlen; i++)
			snprintf(fp + 2 * i, 3, "%02x", md[i]);
	}
	X509_free(cert);
	/* A close_notify for a tidy end; the server may have gone already. */
	if (rc == 0)
		(void)SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	ERR_clear_error();
	return rc;
}

int net_tls_probe(const char *host, int port, SSL_CTX *ctx, const char *server_name,
                  uint64_t timeout_ms, char fp[NET_TLS_FP_HEX + 1], char *err, size_t errlen)
{
	fp[0] = '\0';
	if (!ctx || !server_name || !*server_name)
		return probe_fail(err, errlen, -EINVAL, "no TLS context or name to check");
	uint64_t deadline = core_now_ms() + timeout_ms;
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	int g = getaddrinfo(host, service, &hints, &res);
	if (g != 0)
		return probe_fail(err, errlen, -EHOSTUNREACH, "resolving %s: %s", host,
		                  gai_strerror(g));
	int fd = -1, rc = -EHOSTUNREACH;
	for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
		rc = connect_one(ai, deadline, &fd);
	freeaddrinfo(res);
	if (fd < 0)
		return probe_fail(err, errlen, rc, "connect: %s", strerror(-rc));
	rc = mysql_part(fd, deadline, err, errlen);
	if (rc == 0)
		rc = tls_part(fd, ctx, server_name, deadline, fp, err, errlen);
	close(fd);
	return rc;
}
