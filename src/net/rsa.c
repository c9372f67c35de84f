/* RSA key pair and password decryption for caching_sha2_password. */
#include "net/rsa.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

struct net_rsa {
	EVP_PKEY *key;
	char *pem;
	size_t pem_len;
};

struct net_rsa *net_rsa_generate(int bits, char *err, size_t errlen)
{
	struct net_rsa *k = calloc(1, sizeof(*k));
	BIO *bio = BIO_new(BIO_s_mem());
	if (!k || !bio)
		goto failed;
	k->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (!k->key || PEM_write_bio_PUBKEY(bio, k->key) != 1)
		goto failed;
	char *p;
	long n = BIO_get_mem_data(bio, &p);
	if (n <= 0 || !(k->pem = malloc((size_t)n + 1)))
		goto failed;
	memcpy(k->pem, p, (size_t)n);
	k->pem[n] = 0;
	k->pem_len = (size_t)n;
	BIO_free(bio);
	return k;
failed:
	snprintf(err, errlen, "RSA key generation failed: %s",
	         ERR_error_string(ERR_get_error(), NULL));
	BIO_free(bio);
	net_rsa_free(k);
	return NULL;
}

void net_rsa_free(struct net_rsa *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->key);
	free(k->pem);
	free(k);
}

const char *net_rsa_public_pem(const struct net_rsa *k, size_t *len)
{
	*len = k->pem_len;
	return k->pem;
}

int net_rsa_decrypt_password(const struct net_rsa *k, const uint8_t *ct, size_t n,
                             const uint8_t *salt, size_t salt_len, struct buf *out)
{
	int rc = -EINVAL;
	if (salt_len == 0)
		return rc;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k->key, NULL);
	size_t len = 0;
	if (!ctx || EVP_PKEY_decrypt_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
	    EVP_PKEY_decrypt(ctx, NULL, &len, ct, n) != 1)
		goto done;
	if ((rc = buf_reserve(out, len)) < 0)
		goto done;
	uint8_t *p = out->data + out->len;
	if (EVP_PKEY_decrypt(ctx, p, &len, ct, n) != 1 || len == 0) {
		rc = -EINVAL;
		goto done;
	}
	for (size_t i = 0; i < len; i++)
		p[i] ^= salt[i % salt_len];
	/* The client encrypts the password with its terminating NUL. */
	if (p[len - 1] != 0) {
		rc = -EINVAL;
		goto done;
	}
	out->len += len;
	rc = 0;
done:
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}
