// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness: a whole qcow2 image (a sparse image, see fuzz.h)
 * opened and mapped as kernel/vhdcrypt-qcow2.c does it, through the shared
 * decoders: header from the first sector, layout, the active L1 table, then
 * every virtual sector mapped to an extent through L1, L2 (extended too)
 * and compressed descriptors, with the merging of following entries; for
 * each cluster and L2 table mapped, its refcount is looked up through the
 * refcount table and block as the write path does.
 *
 * Invariants: every read lies inside the image device (metadata cache
 * blocks past it read as zeros), every extent has at least one sector and
 * no more than asked for, DATA extents lie inside the image rounded up to
 * a cluster, compressed streams start inside the device, refcount bytes
 * lie inside their block, and the walk ends. Work is bounded: at most
 * FZ_MAX_L1 L1 entries and FZ_MAX_EXTENTS extents.
 */
#include <vhdcrypt/qcow2.h>

#include "fuzz.h"

#define FZ_MAX_L1	65536
#define FZ_MAX_EXTENTS	4096
#define FZ_MAX_REFTABLE	65536

struct qcow2 {
	struct fz_image im;
	struct qcow2_header h;
	uint64_t image_limit;		/* bytes: the device up to a cluster */
	uint64_t l1_entries;
	uint8_t *l1;
	uint64_t rt_entries;
	uint8_t *rt;			/* refcount table, or NULL */
};

enum kind { EXT_LOWER, EXT_ZERO, EXT_DATA, EXT_COMPRESSED };

struct extent {
	enum kind kind;
	uint64_t host;			/* bytes: DATA, COMPRESSED */
	uint64_t comp_bytes;
};

/* vc_qcow2_load(): header from the first sector, then the L1 table. */
static bool load(struct qcow2 *q)
{
	uint8_t buf[512];
	const char *why = NULL;
	uint64_t cs, bytes, start, span;
	bool whole;

	fz_image_read(&q->im, 0, buf, sizeof(buf));
	if (qcow2_header_decode(buf, sizeof(buf), &q->h, &why)) {
		CHECK_WHY(1, why);
		return false;
	}
	cs = qcow2_cluster_size(&q->h);
	q->image_limit = (q->im.size + cs - 1) & ~(cs - 1);
	if (qcow2_layout_check(&q->h, q->image_limit, &why)) {
		CHECK_WHY(1, why);
		return false;
	}
	q->l1_entries = qcow2_l1_entries_needed(&q->h);
	CHECK(q->l1_entries <= q->h.l1_size);
	if (q->l1_entries > FZ_MAX_L1)
		return false;
	/* past the device, inside its last cluster: refused */
	if (!vc_range_ok(q->h.l1_table_offset, q->l1_entries * 8, q->im.size))
		return false;
	bytes = (q->l1_entries * 8 + 511) & ~511ull;
	whole = bytes <= ((8ull * q->h.l1_size + cs - 1) & ~(cs - 1)) &&
		vc_range_ok(q->h.l1_table_offset, bytes, q->im.size);
	if (!whole)
		bytes = q->l1_entries * 8;
	/* vc_read_table(): whole sectors around it, from the device */
	start = q->h.l1_table_offset & ~511ull;
	span = (q->h.l1_table_offset - start + bytes + 511) & ~511ull;
	q->l1 = malloc(span ? span : 1);
	if (!q->l1)
		abort();
	fz_image_read(&q->im, start, q->l1, span);
	memmove(q->l1, q->l1 + (q->h.l1_table_offset - start), bytes);
	return true;
}

/* vc_qcow2_load_refcounts(): the table, when it is small enough here. */
static void load_refcounts(struct qcow2 *q)
{
	uint64_t bytes = (uint64_t)q->h.refcount_table_clusters <<
			 q->h.cluster_bits;

	if (!bytes || bytes / 8 > FZ_MAX_REFTABLE ||
	    !vc_range_ok(q->h.refcount_table_offset, bytes, q->im.size) ||
	    q->h.refcount_table_offset & (qcow2_cluster_size(&q->h) - 1))
		return;
	q->rt_entries = bytes / 8;
	q->rt = malloc(bytes);
	if (!q->rt)
		abort();
	fz_image_read(&q->im, q->h.refcount_table_offset, q->rt, bytes);
}

/* vc_rc_get(): the refcount of the cluster at @host, through the table. */
static void refcount(struct qcow2 *q, uint64_t host)
{
	uint64_t index = host >> q->h.cluster_bits;
	uint32_t rb_bits = qcow2_refblock_bits(&q->h);
	uint64_t rbi = index >> rb_bits, byte, v;
	uint8_t sector[512];
	const char *why = NULL;
	u64 block;

	if (!q->rt || rbi >= q->rt_entries)
		return;
	if (qcow2_reftable_decode(&q->h, fz_be64(q->rt + 8 * rbi), &block,
				  &why)) {
		CHECK_WHY(1, why);
		return;
	}
	if (!block || !vc_range_ok(block, qcow2_cluster_size(&q->h),
				   q->im.size))
		return;
	byte = qcow2_refcount_byte(&q->h, index & ((1ull << rb_bits) - 1));
	CHECK(byte + ((1u << q->h.refcount_order) + 7) / 8 <=
	      qcow2_cluster_size(&q->h));
	byte += block;
	/* one cached sector; a refcount never straddles one */
	CHECK(byte % 512 + ((1u << q->h.refcount_order) + 7) / 8 <= 512);
	fz_image_meta(&q->im, byte & ~511ull, sector, sizeof(sector));
	v = qcow2_refcount_get(&q->h, sector + byte % 512, index);
	CHECK(v <= qcow2_refcount_max(&q->h));
	fz_sink += v;
}

/* vc_qcow2_decode(): how @vbyte maps and for how many bytes. */
static bool decode(struct qcow2 *q, uint64_t vbyte, uint64_t entry,
		   uint64_t bitmap, struct extent *e, uint64_t *bytes)
{
	uint32_t cb = q->h.cluster_bits, scb = qcow2_subcluster_bits(&q->h);
	uint64_t in_cluster = vbyte & ((1ull << cb) - 1);
	uint32_t sc = in_cluster >> scb;
	struct qcow2_map m, next;
	const char *why = NULL;

	if (qcow2_l2_decode(&q->h, entry, bitmap, sc, &m, &why)) {
		CHECK_WHY(1, why);
		return false;	/* EIO */
	}
	*bytes = (1ull << cb) - in_cluster;
	switch (m.kind) {
	case QCOW2_COMPRESSED:
		e->kind = EXT_COMPRESSED;
		e->host = m.host_offset;
		e->comp_bytes = m.compressed_bytes;
		return true;
	case QCOW2_DATA:
		if (!vc_range_ok(m.host_offset, 1ull << scb, q->image_limit))
			return false;
		e->kind = EXT_DATA;
		e->host = m.host_offset + (in_cluster & ((1ull << scb) - 1));
		break;
	case QCOW2_ZERO:
		e->kind = EXT_ZERO;
		break;
	default:
		e->kind = EXT_LOWER;
		break;
	}
	if (!qcow2_extended_l2(&q->h))
		return true;
	*bytes = ((uint64_t)(sc + 1) << scb) - in_cluster;
	for (uint32_t i = sc + 1; i < QCOW2_SUBCLUSTERS; i++) {
		if (qcow2_l2_decode(&q->h, entry, bitmap, i, &next, &why) ||
		    next.kind != m.kind)
			break;
		if (next.kind == QCOW2_DATA)
			CHECK(next.host_offset == m.host_offset +
			      ((uint64_t)(i - sc) << scb));
		*bytes += 1ull << scb;
	}
	return true;
}

/* An L2 entry and its bitmap, read through the metadata cache. */
static void l2_entry(struct qcow2 *q, uint64_t pos, uint64_t *entry,
		     uint64_t *bitmap)
{
	uint8_t buf[16];
	uint32_t esz = qcow2_l2_entry_size(&q->h);

	CHECK(pos % esz == 0);
	fz_image_meta(&q->im, pos, buf, esz);
	*entry = fz_be64(buf);
	*bitmap = esz == 16 ? fz_be64(buf + 8) : 0;
}

/* vc_qcow2_map(): @want bytes from @vbyte; false for EIO. */
static bool map(struct qcow2 *q, uint64_t vbyte, uint64_t want,
		struct extent *e, uint64_t *len)
{
	uint32_t cb = q->h.cluster_bits, l2b = qcow2_l2_bits(&q->h);
	uint32_t esz = qcow2_l2_entry_size(&q->h);
	uint64_t cs = 1ull << cb, l1_index = vbyte >> (cb + l2b);
	uint64_t l2_index = (vbyte >> cb) & ((1ull << l2b) - 1);
	uint64_t entry, bitmap, bytes, pos, block_end;
	const char *why = NULL;
	u64 l2_offset;

	CHECK(l1_index < q->l1_entries);
	if (qcow2_l1_decode(&q->h, fz_be64(q->l1 + 8 * l1_index), &l2_offset,
			    &why)) {
		CHECK_WHY(1, why);
		return false;
	}
	if (!l2_offset) {
		uint64_t span = 1ull << (cb + l2b);

		e->kind = EXT_LOWER;
		bytes = span - (vbyte & (span - 1));
		*len = bytes < want ? bytes : want;
		return true;
	}
	if (!vc_range_ok(l2_offset, cs, q->image_limit))
		return false;
	CHECK(l2_index * esz < cs);
	refcount(q, l2_offset);
	pos = l2_offset + l2_index * esz;
	l2_entry(q, pos, &entry, &bitmap);
	if (!decode(q, vbyte, entry, bitmap, e, &bytes))
		return false;
	/* following entries in the same 4 KiB cache block */
	block_end = (pos & ~4095ull) + 4096;
	for (pos += esz; e->kind != EXT_COMPRESSED && bytes < want &&
	     pos + esz <= block_end && !((vbyte + bytes) & (cs - 1));
	     pos += esz) {
		struct extent next;
		uint64_t next_bytes;

		l2_entry(q, pos, &entry, &bitmap);
		if (!decode(q, vbyte + bytes, entry, bitmap, &next,
			    &next_bytes) ||
		    next.kind != e->kind ||
		    (e->kind == EXT_DATA && next.host != e->host + bytes))
			break;
		bytes += next_bytes;
	}
	*len = bytes < want ? bytes : want;
	return true;
}

/* vc_dctx_load(): what a compressed cluster's read covers. */
static void check_compressed(struct qcow2 *q, const struct extent *e)
{
	uint64_t start = e->host & ~511ull, head = e->host - start;
	uint64_t len = (head + e->comp_bytes + 511) & ~511ull;

	CHECK(e->comp_bytes >= 1);
	CHECK(e->comp_bytes <= qcow2_cluster_size(&q->h) * 2);
	if (start >= q->im.size)
		return;	/* EIO */
	if (len > q->im.size - start)
		len = q->im.size - start;
	CHECK(len > head);
	CHECK(fz_inside(q->im.size, start, len));
	refcount(q, e->host);
}

/* Map every virtual sector (up to the budget), as bios would. */
static void walk(struct qcow2 *q)
{
	uint64_t vbytes = q->h.size, vbyte = 0;
	unsigned int extents = 0;
	struct extent e;

	while (vbyte < vbytes && extents++ < FZ_MAX_EXTENTS) {
		uint64_t want = vbytes - vbyte, len;

		if (want > 1u << 30)
			want = 1u << 30;	/* a bio's worth */
		if (!map(q, vbyte, want, &e, &len)) {
			/* EIO for this cluster: go on with the next */
			len = qcow2_cluster_size(&q->h) -
			      (vbyte & (qcow2_cluster_size(&q->h) - 1));
			vbyte += len < want ? len : want;
			continue;
		}
		CHECK(len >= 512 && len <= want && len % 512 == 0);
		if (e.kind == EXT_DATA) {
			CHECK(fz_inside(q->image_limit, e.host, len));
			refcount(q, e.host);
		} else if (e.kind == EXT_COMPRESSED) {
			check_compressed(q, &e);
		}
		vbyte += len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct qcow2 q;

	memset(&q, 0, sizeof(q));
	if (!fz_image_parse(&q.im, d, n) || q.im.size < 512)
		return 0;
	if (load(&q)) {
		load_refcounts(&q);
		walk(&q);
	}
	free(q.l1);
	free(q.rt);
	return 0;
}
