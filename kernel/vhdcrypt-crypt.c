// SPDX-License-Identifier: GPL-2.0
/*
 * Ciphers, keys and IVs for dm-vhdcrypt.
 *
 * Cipher specifications use dm-crypt's syntax ("aes-xts-plain64",
 * "aes-cbc-essiv:sha256", "capi:xts(aes)-plain"). Keys are hex, or a kernel
 * keyring reference ":<size>:<logon|user>:<description>", as in dm-crypt.
 * The data unit is 512 bytes, as both image formats fix it; a mapping that
 * covers the whole virtual disk (a detached LUKS header) may use 4096.
 */
#include <crypto/skcipher.h>
#include <keys/user-type.h>
#include <linux/key.h>
#include <linux/random.h>
#include <linux/scatterlist.h>

#include <vhdcrypt/table.h>

#include "vhdcrypt.h"

/* Each request serves one bio at a time, reused unit after unit. */
#define VC_MIN_REQS		8

#ifdef CONFIG_KEYS
/* Copy the payload of a "logon" or "user" key of exactly k->size bytes. */
static int vc_read_keyring_key(const struct vc_key_spec *k, u8 *out)
{
	const struct user_key_payload *payload;
	struct key *key;
	int r;

	key = request_key(k->kind == VC_KEY_LOGON ? &key_type_logon :
			  &key_type_user, k->desc, NULL);
	if (IS_ERR(key))
		return PTR_ERR(key);

	down_read(&key->sem);
	payload = user_key_payload_locked(key);
	if (!payload) {
		r = -EKEYREVOKED;
	} else if (payload->datalen != k->size) {
		r = -EINVAL;
	} else {
		memcpy(out, payload->data, k->size);
		r = 0;
	}
	up_read(&key->sem);
	key_put(key);
	return r;
}
#else
static int vc_read_keyring_key(const struct vc_key_spec *k, u8 *out)
{
	return -EINVAL;
}
#endif

/* Overwrite a hex key in the table arguments, as dm-crypt does. */
static void vc_wipe_key_string(char *key_string)
{
	if (key_string[0] != ':')
		memset(key_string, '0', strlen(key_string));
}

/*
 * Parse @key_string into a new key buffer. A hex key in @key_string is
 * overwritten with '0's, on success and on failure, as dm-crypt does.
 */
static int vc_parse_key(char *key_string, u8 **key, unsigned int *size,
			char **desc, char **error)
{
	struct vc_key_spec k;
	const char *why;
	int r;

	*key = NULL;
	*desc = NULL;
	r = vc_key_spec_parse(key_string, &k, &why);
	if (r) {
		*error = (char *)why;
		goto fail;
	}
	*key = kmalloc(k.size, GFP_KERNEL);
	if (k.kind != VC_KEY_HEX)
		*desc = kstrdup(key_string, GFP_KERNEL);
	if (!*key || (k.kind != VC_KEY_HEX && !*desc)) {
		*error = "cannot allocate key";
		r = -ENOMEM;
		goto fail;
	}
	if (k.kind == VC_KEY_HEX) {
		vc_key_hex_decode(key_string, *key, k.size);
		vc_wipe_key_string(key_string);
	} else {
		r = vc_read_keyring_key(&k, *key);
		if (r) {
			*error = "cannot read the keyring key (missing, wrong size or type)";
			goto fail;
		}
	}
	*size = k.size;
	return 0;

fail:
	vc_wipe_key_string(key_string);
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
	struct vc_cipher_spec cs;
	const char *why;
	int r;

	BUILD_BUG_ON(VC_ALG_NAME_MAX != CRYPTO_MAX_ALG_NAME);
	c->sector_size = SECTOR_SIZE;
	c->spec = kstrdup(spec, GFP_KERNEL);
	if (!c->spec) {
		*error = "cannot allocate cipher";
		r = -ENOMEM;
		goto fail;
	}
	if (!strcmp(spec, "none")) {
		c->iv_mode = VC_IV_NONE;
		return vc_cipher_set_key(c, key, error);
	}

	r = vc_cipher_spec_parse(spec, &cs, &why);
	if (r) {
		*error = (char *)why;
		goto fail;
	}
	c->iv_mode = cs.iv_mode;

	/*
	 * Async implementations are fine (x86 AES-NI XTS is one), but not
	 * ones that allocate memory per request.
	 */
	c->tfm = crypto_alloc_skcipher(cs.alg, 0, CRYPTO_ALG_ALLOCATES_MEMORY);
	if (IS_ERR(c->tfm)) {
		r = PTR_ERR(c->tfm);
		c->tfm = NULL;
		*error = "cipher not available in this kernel";
		goto fail;
	}
	c->iv_size = crypto_skcipher_ivsize(c->tfm);
	if (c->iv_mode != VC_IV_NULL && c->iv_size < 8) {
		*error = "cipher IV is too small for this IV mode";
		r = -EINVAL;
		goto fail;
	}

	c->req_bytes = sizeof(struct skcipher_request) +
		       crypto_skcipher_reqsize(c->tfm) +
		       crypto_skcipher_alignmask(c->tfm) + c->iv_size;
	r = mempool_init_kmalloc_pool(&c->req_pool, VC_MIN_REQS, c->req_bytes);
	if (r) {
		*error = "cannot allocate crypto request pool";
		goto fail;
	}
	return vc_cipher_set_key(c, key, error);

fail:
	vc_wipe_key_string(key);
	return r;
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
		put_unaligned_le32(sector & 0xffffffff, iv);
		break;
	case VC_IV_PLAIN64:
	case VC_IV_ESSIV:
		put_unaligned_le64(sector, iv);
		break;
	case VC_IV_PLAIN64BE:
		put_unaligned_be64(sector, iv + c->iv_size - sizeof(u64));
		break;
	default:
		break;
	}
}

/* One request, reused unit after unit; waits for async implementations. */
struct vc_crypt_req {
	struct vc_cipher *c;
	struct skcipher_request *req;
	u8 *iv;
	struct crypto_wait wait;
	bool encrypt;
	unsigned int done;
};

static int vc_crypt_begin(struct vc_cipher *c, struct vc_crypt_req *cr,
			  bool encrypt)
{
	/* "key wipe" may have run since the I/O was mapped. */
	if (unlikely(!READ_ONCE(c->key_valid)))
		return -EIO;
	cr->c = c;
	cr->encrypt = encrypt;
	cr->done = 0;
	crypto_init_wait(&cr->wait);
	cr->req = mempool_alloc(&c->req_pool, GFP_NOIO);
	cr->iv = PTR_ALIGN((u8 *)(cr->req + 1) + crypto_skcipher_reqsize(c->tfm),
			   crypto_skcipher_alignmask(c->tfm) + 1);
	skcipher_request_set_tfm(cr->req, c->tfm);
	skcipher_request_set_callback(cr->req, CRYPTO_TFM_REQ_MAY_BACKLOG |
				      CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &cr->wait);
	return 0;
}

static void vc_crypt_end(struct vc_crypt_req *cr)
{
	mempool_free(cr->req, &cr->c->req_pool);
}

/* Convert one unit from @in to @out (which may be the same page). */
static int vc_crypt_unit(struct vc_crypt_req *cr, struct page *in,
			 unsigned int in_off, struct page *out,
			 unsigned int out_off, u64 sector)
{
	struct vc_cipher *c = cr->c;
	struct scatterlist sg_in, sg_out;
	int r;

	sg_init_table(&sg_in, 1);
	sg_set_page(&sg_in, in, c->sector_size, in_off);
	sg_init_table(&sg_out, 1);
	sg_set_page(&sg_out, out, c->sector_size, out_off);
	if (c->iv_large_sectors)
		sector >>= ilog2(c->sector_size >> SECTOR_SHIFT);
	vc_fill_iv(c, cr->iv, sector);
	skcipher_request_set_crypt(cr->req, &sg_in, &sg_out, c->sector_size,
				   cr->iv);
	/* Waits for async (-EINPROGRESS) and backlogged (-EBUSY) requests. */
	r = crypto_wait_req(cr->encrypt ? crypto_skcipher_encrypt(cr->req) :
					  crypto_skcipher_decrypt(cr->req),
			    &cr->wait);
	if (!(++cr->done & 255))
		cond_resched();
	return r;
}

int vc_crypt_bio(struct vc_cipher *c, struct bio *bio, struct bvec_iter iter,
		 u64 iv_sector, bool encrypt)
{
	unsigned int unit_sectors = c->sector_size >> SECTOR_SHIFT;
	struct vc_crypt_req cr;
	int r;

	r = vc_crypt_begin(c, &cr, encrypt);
	if (r)
		return r;
	while (!r && iter.bi_size) {
		struct bio_vec bv = bio_iter_iovec(bio, iter);

		/* io_hints' dma_alignment keeps units inside one page. */
		if (unlikely(bv.bv_len < c->sector_size)) {
			r = -EIO;
			break;
		}
		r = vc_crypt_unit(&cr, bv.bv_page, bv.bv_offset, bv.bv_page,
				  bv.bv_offset, iv_sector);
		bio_advance_iter_single(bio, &iter, c->sector_size);
		iv_sector += unit_sectors;
	}
	vc_crypt_end(&cr);
	return r;
}

int vc_encrypt_copy(struct vc_cipher *c, struct bio *dst, struct bio *src,
		    struct bvec_iter src_iter, u64 iv_sector)
{
	unsigned int unit_sectors = c->sector_size >> SECTOR_SHIFT;
	struct bvec_iter dst_iter = dst->bi_iter;
	struct vc_crypt_req cr;
	int r;

	r = vc_crypt_begin(c, &cr, true);
	if (r)
		return r;
	while (!r && src_iter.bi_size) {
		struct bio_vec in = bio_iter_iovec(src, src_iter);
		struct bio_vec out = bio_iter_iovec(dst, dst_iter);

		if (unlikely(in.bv_len < c->sector_size ||
			     out.bv_len < c->sector_size)) {
			r = -EIO;
			break;
		}
		r = vc_crypt_unit(&cr, in.bv_page, in.bv_offset, out.bv_page,
				  out.bv_offset, iv_sector);
		bio_advance_iter_single(src, &src_iter, c->sector_size);
		bio_advance_iter_single(dst, &dst_iter, c->sector_size);
		iv_sector += unit_sectors;
	}
	vc_crypt_end(&cr);
	return r;
}

int vc_crypt_pages(struct vc_cipher *c, struct page **pages,
		   unsigned int offset, unsigned int len, u64 iv_sector,
		   bool encrypt)
{
	unsigned int unit_sectors = c->sector_size >> SECTOR_SHIFT;
	struct vc_crypt_req cr;
	int r;

	if (WARN_ON_ONCE((offset | len) & (c->sector_size - 1)))
		return -EIO;
	r = vc_crypt_begin(c, &cr, encrypt);
	if (r)
		return r;
	for (; !r && len; len -= c->sector_size, offset += c->sector_size) {
		struct page *p = pages[offset >> PAGE_SHIFT];

		r = vc_crypt_unit(&cr, p, offset_in_page(offset), p,
				  offset_in_page(offset), iv_sector);
		iv_sector += unit_sectors;
	}
	vc_crypt_end(&cr);
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
