/* RSA for caching_sha2_password on plaintext client links: vecgate gives the
 * client its own public key, decrypts the password the client sends, and
 * passes it on to TiDB over TLS (TiDB does full auth over TLS only). */
#ifndef VECGATE_NET_RSA_H
#define VECGATE_NET_RSA_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

struct net_rsa;

/* A fresh key pair (bits >= 2048). NULL with a message in err. */
struct net_rsa *net_rsa_generate(int bits, char *err, size_t errlen);
void net_rsa_free(struct net_rsa *k);
/* The public key as PEM (SubjectPublicKeyInfo), as MySQL clients expect it. */
const char *net_rsa_public_pem(const struct net_rsa *k, size_t *len);
/* Decrypts what a caching_sha2 client sends after the public key: the
 * password with its NUL, XORed with the salt (repeated), RSA-OAEP encrypted.
 * Appends the password and its NUL to out. 0, -EINVAL or -ENOMEM. */
int net_rsa_decrypt_password(const struct net_rsa *k, const uint8_t *ct, size_t n,
                             const uint8_t *salt, size_t salt_len, struct buf *out) MUST_CHECK;

#endif
