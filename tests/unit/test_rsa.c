/* Unit tests for src/net/rsa: the caching_sha2 password exchange as a MySQL
 * client performs it (XOR with the salt, RSA-OAEP with the server's key). */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "net/rsa.h"

/* What a client does with the PEM it was given. */
static size_t client_encrypt(const char *pem, size_t pem_len, const char *password,
                             const uint8_t *salt, size_t salt_len, uint8_t *out, size_t cap)
{
	BIO *bio = BIO_new_mem_buf(pem, (int)pem_len);
	EVP_PKEY *pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	cr_assert_not_null(pub);
	uint8_t plain[256];
	size_t n = strlen(password) + 1;
	for (size_t i = 0; i < n; i++)
		plain[i] = (uint8_t)password[i] ^ salt[i % salt_len];
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	cr_assert_eq(EVP_PKEY_encrypt_init(ctx), 1);
	cr_assert_eq(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING), 1);
	size_t len = cap;
	cr_assert_eq(EVP_PKEY_encrypt(ctx, out, &len, plain, n), 1);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pub);
	BIO_free(bio);
	return len;
}

Test(rsa, password_round_trip)
{
	char err[256];
	struct net_rsa *k = net_rsa_generate(2048, err, sizeof(err));
	cr_assert_not_null(k, "%s", err);
	size_t pem_len;
	const char *pem = net_rsa_public_pem(k, &pem_len);
	cr_assert(strncmp(pem, "-----BEGIN PUBLIC KEY-----", 26) == 0);
	const uint8_t salt[20] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
	                          11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
	const char *passwords[] = {"", "x", "secret", "a password longer than the salt!", "ü€"};
	for (size_t i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++) {
		uint8_t ct[512];
		size_t n = client_encrypt(pem, pem_len, passwords[i], salt, 20, ct, sizeof(ct));
		struct buf out;
		buf_init(&out);
		cr_assert_eq(net_rsa_decrypt_password(k, ct, n, salt, 20, &out), 0);
		cr_assert_eq(out.len, strlen(passwords[i]) + 1);
		cr_assert_eq(memcmp(out.data, passwords[i], out.len), 0);
		buf_free(&out);
	}
	net_rsa_free(k);
}

Test(rsa, garbage_is_refused)
{
	char err[256];
	struct net_rsa *k = net_rsa_generate(2048, err, sizeof(err));
	cr_assert_not_null(k);
	const uint8_t salt[20] = {0};
	uint8_t junk[256];
	memset(junk, 0x5A, sizeof(junk));
	struct buf out;
	buf_init(&out);
	cr_assert_eq(net_rsa_decrypt_password(k, junk, sizeof(junk), salt, 20, &out), -EINVAL);
	cr_assert_eq(net_rsa_decrypt_password(k, junk, 3, salt, 20, &out), -EINVAL);
	cr_assert_eq(net_rsa_decrypt_password(k, junk, 0, salt, 20, &out), -EINVAL);
	cr_assert_eq(out.len, 0);
	buf_free(&out);
	net_rsa_free(k);
}
