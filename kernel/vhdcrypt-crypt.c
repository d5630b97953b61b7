// SPDX-License-Identifier: GPL-2.0
/*
 * Ciphers, keys and IVs for dm-vhdcrypt.
 *
 * Cipher specifications use dm-crypt's syntax ("aes-xts-plain64",
 * "aes-cbc-essiv:sha256", "capi:xts(aes)-plain"). Keys are hex, or a kernel
 * keyring reference ":<size>:<logon|user>:<description>", as in dm-crypt.
 * The data unit is always 512 bytes: both image formats fix it.
 */
#include <crypto/skcipher.h>
#include <keys/user-type.h>
#include <linux/ctype.h>
#include <linux/key.h>
#include <linux/random.h>
#include <linux/scatterlist.h>

#include "vhdcrypt.h"

#define VC_SECTOR_SIZE		512
#define VC_MAX_KEY_SIZE		256	/* bytes */
#define VC_MIN_REQS		64
#define VC_CIPHER_NAME_MAX	CRYPTO_MAX_ALG_NAME

static const struct {
	const char *name;
	enum vc_iv_mode mode;
} vc_iv_modes[] = {
	{ "null", VC_IV_NULL },
	{ "plain", VC_IV_PLAIN },
	{ "plain64", VC_IV_PLAIN64 },
	{ "plain64be", VC_IV_PLAIN64BE },
	{ "essiv", VC_IV_ESSIV },
};

static int vc_parse_iv_mode(const char *name, enum vc_iv_mode *mode)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(vc_iv_modes); i++) {
		if (!strcmp(name, vc_iv_modes[i].name)) {
			*mode = vc_iv_modes[i].mode;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Turn a dm-crypt cipher specification into a crypto API algorithm name and
 * an IV mode. @buf is a writable copy of the specification.
 */
static int vc_parse_cipher(char *buf, char *alg, enum vc_iv_mode *mode,
			   char **error)
{
	char *cipher, *chain, *ivmode, *ivopts;
	char inner[VC_CIPHER_NAME_MAX];
	int n;

	if (!strncmp(buf, "capi:", 5)) {
		/* capi:<kernel algorithm>-<ivmode>[:<ivopts>] */
		cipher = buf + 5;
		ivmode = strrchr(cipher, '-');
		if (!ivmode) {
			*error = "capi: cipher needs an IV mode";
			return -EINVAL;
		}
		*ivmode++ = '\0';
		chain = NULL;
	} else {
		/* <cipher>-<chainmode>-<ivmode>[:<ivopts>] */
		cipher = strsep(&buf, "-");
		chain = strsep(&buf, "-");
		ivmode = buf;
		if (!chain || !*cipher || !*chain) {
			*error = "cipher must be <cipher>-<chainmode>-<ivmode>";
			return -EINVAL;
		}
		if (strchr(cipher, ':')) {
			*error = "multi-key ciphers are not supported";
			return -EINVAL;
		}
		if (!ivmode && !strcmp(chain, "ecb"))
			ivmode = "null";
		if (!ivmode) {
			*error = "cipher needs an IV mode";
			return -EINVAL;
		}
	}

	ivopts = strchr(ivmode, ':');
	if (ivopts)
		*ivopts++ = '\0';
	if (vc_parse_iv_mode(ivmode, mode)) {
		*error = "unsupported IV mode (plain, plain64, plain64be, essiv, null)";
		return -EINVAL;
	}
	if ((*mode == VC_IV_ESSIV) != !!ivopts) {
		*error = "IV mode essiv needs a hash (essiv:<hash>), others take none";
		return -EINVAL;
	}

	if (chain)
		n = snprintf(inner, sizeof(inner), "%s(%s)", chain, cipher);
	else
		n = snprintf(inner, sizeof(inner), "%s", cipher);
	if (n >= sizeof(inner))
		goto too_long;
	if (*mode == VC_IV_ESSIV)
		n = snprintf(alg, VC_CIPHER_NAME_MAX, "essiv(%s,%s)", inner,
			     ivopts);
	else
		n = snprintf(alg, VC_CIPHER_NAME_MAX, "%s", inner);
	if (n >= VC_CIPHER_NAME_MAX)
		goto too_long;
	return 0;

too_long:
	*error = "cipher name too long";
	return -EINVAL;
}

#ifdef CONFIG_KEYS
/* Copy the payload of a "logon" or "user" key of exactly @size bytes. */
static int vc_read_keyring_key(const char *type_desc, unsigned int size,
			       u8 *out)
{
	const struct user_key_payload *payload;
	struct key_type *type;
	const char *desc;
	struct key *key;
	int r;

	if (!strncmp(type_desc, "logon:", 6))
		type = &key_type_logon;
	else if (!strncmp(type_desc, "user:", 5))
		type = &key_type_user;
	else
		return -EINVAL;
	desc = strchr(type_desc, ':') + 1;
	if (!*desc)
		return -EINVAL;

	key = request_key(type, desc, NULL);
	if (IS_ERR(key))
		return PTR_ERR(key);

	down_read(&key->sem);
	payload = user_key_payload_locked(key);
	if (!payload) {
		r = -EKEYREVOKED;
	} else if (payload->datalen != size) {
		r = -EINVAL;
	} else {
		memcpy(out, payload->data, size);
		r = 0;
	}
	up_read(&key->sem);
	key_put(key);
	return r;
}
#else
static int vc_read_keyring_key(const char *type_desc, unsigned int size,
			       u8 *out)
{
	return -EINVAL;
}
#endif

static bool vc_has_whitespace(const char *s)
{
	for (; *s; s++)
		if (isspace(*s))
			return true;
	return false;
}

/*
 * Parse @key_string into a new key buffer. A hex key in @key_string is
 * overwritten with '0's, on success and on failure, as dm-crypt does.
 */
static int vc_parse_key(char *key_string, u8 **key, unsigned int *size,
			char **desc, char **error)
{
	unsigned int n;
	char *rest;
	int r;

	*key = NULL;
	*desc = NULL;
	if (key_string[0] == ':') {
		/* :<size>:<type>:<description> */
		if (vc_has_whitespace(key_string) ||
		    sscanf(key_string, ":%u:", &n) != 1) {
			*error = "invalid keyring key reference";
			return -EINVAL;
		}
		rest = strchr(key_string + 1, ':');
		if (!rest || !n || n > VC_MAX_KEY_SIZE) {
			*error = "invalid keyring key size";
			return -EINVAL;
		}
		*key = kmalloc(n, GFP_KERNEL);
		*desc = kstrdup(key_string, GFP_KERNEL);
		if (!*key || !*desc) {
			r = -ENOMEM;
			*error = "cannot allocate key";
			goto fail;
		}
		r = vc_read_keyring_key(rest + 1, n, *key);
		if (r) {
			*error = "cannot read the keyring key (missing, wrong size or type)";
			goto fail;
		}
		*size = n;
		return 0;
	}

	n = strlen(key_string);
	if (!n || n & 1 || n / 2 > VC_MAX_KEY_SIZE) {
		*error = "key must be an even number of hex digits";
		r = -EINVAL;
		goto wipe;
	}
	*key = kmalloc(n / 2, GFP_KERNEL);
	if (!*key) {
		*error = "cannot allocate key";
		r = -ENOMEM;
		goto wipe;
	}
	if (hex2bin(*key, key_string, n / 2)) {
		*error = "key is not hex";
		r = -EINVAL;
		goto wipe;
	}
	*size = n / 2;
	memset(key_string, '0', n);
	return 0;

wipe:
	memset(key_string, '0', strlen(key_string));
fail:
	kfree_sensitive(*key);
	kfree(*desc);
	*key = NULL;
	*desc = NULL;
	return r;
}

int vc_cipher_set_key(struct vc_cipher *c, char *key_string, char **error)
{
	unsigned int size;
	char *desc;
	u8 *key;
	int r;

	if (!c->tfm) {
		if (strcmp(key_string, "-")) {
			*error = "cipher none takes no key: use -";
			return -EINVAL;
		}
		return 0;
	}

	r = vc_parse_key(key_string, &key, &size, &desc, error);
	if (r)
		return r;
	if (c->key_size && size != c->key_size) {
		*error = "new key must have the size of the old one";
		r = -EINVAL;
		goto fail;
	}
	r = crypto_skcipher_setkey(c->tfm, key, size);
	if (r) {
		*error = "key size not valid for this cipher";
		goto fail;
	}

	kfree_sensitive(c->key);
	kfree(c->key_desc);
	c->key = key;
	c->key_size = size;
	c->key_desc = desc;
	c->key_valid = true;
	return 0;

fail:
	kfree_sensitive(key);
	kfree(desc);
	return r;
}

void vc_cipher_wipe_key(struct vc_cipher *c)
{
	if (!c->tfm || !c->key)
		return;
	c->key_valid = false;
	/* Overwrite the key schedule in the cipher too, not only our copy. */
	get_random_bytes(c->key, c->key_size);
	crypto_skcipher_setkey(c->tfm, c->key, c->key_size);
	memzero_explicit(c->key, c->key_size);
}

int vc_cipher_init(struct vc_cipher *c, const char *spec, char *key,
		   char **error)
{
	char alg[VC_CIPHER_NAME_MAX];
	char *buf;
	int r;

	c->spec = kstrdup(spec, GFP_KERNEL);
	if (!c->spec) {
		*error = "cannot allocate cipher";
		return -ENOMEM;
	}
	if (!strcmp(spec, "none")) {
		c->iv_mode = VC_IV_NONE;
		return vc_cipher_set_key(c, key, error);
	}

	buf = kstrdup(spec, GFP_KERNEL);
	if (!buf) {
		*error = "cannot allocate cipher";
		return -ENOMEM;
	}
	r = vc_parse_cipher(buf, alg, &c->iv_mode, error);
	kfree(buf);
	if (r)
		return r;

	/*
	 * Async implementations are fine (x86 AES-NI XTS is one), but not
	 * ones that allocate memory per request.
	 */
	c->tfm = crypto_alloc_skcipher(alg, 0, CRYPTO_ALG_ALLOCATES_MEMORY);
	if (IS_ERR(c->tfm)) {
		r = PTR_ERR(c->tfm);
		c->tfm = NULL;
		*error = "cipher not available in this kernel";
		return r;
	}
	c->iv_size = crypto_skcipher_ivsize(c->tfm);
	if (c->iv_mode != VC_IV_NULL && c->iv_size < 8) {
		*error = "cipher IV is too small for this IV mode";
		return -EINVAL;
	}

	c->req_bytes = sizeof(struct skcipher_request) +
		       crypto_skcipher_reqsize(c->tfm) +
		       crypto_skcipher_alignmask(c->tfm) + c->iv_size;
	r = mempool_init_kmalloc_pool(&c->req_pool, VC_MIN_REQS, c->req_bytes);
	if (r) {
		*error = "cannot allocate crypto request pool";
		return r;
	}

	r = vc_cipher_set_key(c, key, error);
	if (r)
		return r;
	DMINFO("%s: using %s", spec,
	       crypto_skcipher_driver_name(c->tfm));
	return 0;
}

void vc_cipher_destroy(struct vc_cipher *c)
{
	mempool_exit(&c->req_pool);
	if (c->tfm)
		crypto_free_skcipher(c->tfm);
	c->tfm = NULL;
	kfree_sensitive(c->key);
	c->key = NULL;
	kfree(c->key_desc);
	c->key_desc = NULL;
	kfree(c->spec);
	c->spec = NULL;
}

static void vc_fill_iv(const struct vc_cipher *c, u8 *iv, u64 sector)
{
	memset(iv, 0, c->iv_size);
	switch (c->iv_mode) {
	case VC_IV_PLAIN:
		*(__le32 *)iv = cpu_to_le32(sector & 0xffffffff);
		break;
	case VC_IV_PLAIN64:
	case VC_IV_ESSIV:
		*(__le64 *)iv = cpu_to_le64(sector);
		break;
	case VC_IV_PLAIN64BE:
		*(__be64 *)&iv[c->iv_size - sizeof(u64)] = cpu_to_be64(sector);
		break;
	default:
		break;
	}
}

int vc_decrypt_bio(struct vc_cipher *c, struct bio *bio, struct bvec_iter iter,
		   u64 iv_sector)
{
	struct skcipher_request *req;
	struct scatterlist sg;
	DECLARE_CRYPTO_WAIT(wait);
	unsigned int done = 0;
	u8 *iv;
	int r = 0;

	req = mempool_alloc(&c->req_pool, GFP_NOIO);
	iv = PTR_ALIGN((u8 *)(req + 1) + crypto_skcipher_reqsize(c->tfm),
		       crypto_skcipher_alignmask(c->tfm) + 1);
	skcipher_request_set_tfm(req, c->tfm);
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_BACKLOG |
				      CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &wait);

	while (iter.bi_size) {
		struct bio_vec bv = bio_iter_iovec(bio, iter);

		/* io_hints' dma_alignment keeps sectors inside one page. */
		if (unlikely(bv.bv_len < VC_SECTOR_SIZE)) {
			r = -EIO;
			break;
		}
		sg_init_table(&sg, 1);
		sg_set_page(&sg, bv.bv_page, VC_SECTOR_SIZE, bv.bv_offset);
		vc_fill_iv(c, iv, iv_sector);
		skcipher_request_set_crypt(req, &sg, &sg, VC_SECTOR_SIZE, iv);
		/* Waits for async (-EINPROGRESS) and backlogged (-EBUSY) ones. */
		r = crypto_wait_req(crypto_skcipher_decrypt(req), &wait);
		if (r)
			break;
		bio_advance_iter_single(bio, &iter, VC_SECTOR_SIZE);
		iv_sector++;
		if (!(++done & 255))
			cond_resched();
	}

	mempool_free(req, &c->req_pool);
	return r;
}

unsigned int vc_cipher_key_status(struct vc_cipher *c, char *result,
				  unsigned int maxlen)
{
	unsigned int sz = 0;
	unsigned int i;

	if (!c->tfm)
		DMEMIT("-");
	else if (c->key_desc)
		DMEMIT("%s", c->key_desc);
	else
		for (i = 0; i < c->key_size; i++)
			DMEMIT("%02x", c->key[i]);
	return sz;
}
