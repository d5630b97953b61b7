// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - image parsing and chain resolution.
 *
 * Only the shared decoders of include/vhdcrypt/ interpret on-disk bytes;
 * this file reads the bytes, applies tapdisk's and QEMU's rules for finding
 * parents, and turns decoder failures into one clear message.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "blkid.h"
#include "image.h"

const char *vc_fmt_name(enum vc_fmt f)
{
	switch (f) {
	case VC_FMT_VHD:
		return "vhd";
	case VC_FMT_QCOW2:
		return "qcow2";
	case VC_FMT_RAW:
		return "raw";
	default:
		return "unknown";
	}
}

const char *vc_enc_name(enum vc_enc e)
{
	switch (e) {
	case VC_ENC_OPENXT:
		return "openxt";
	case VC_ENC_LUKS:
		return "luks";
	case VC_ENC_AES:
		return "aes";
	case VC_ENC_HEADER:
		return "luks-header";
	default:
		return "none";
	}
}

int vc_fmt_parse(const char *s, enum vc_fmt *f)
{
	if (!strcmp(s, "vhd") || !strcmp(s, "vpc"))
		*f = VC_FMT_VHD;
	else if (!strcmp(s, "qcow2"))
		*f = VC_FMT_QCOW2;
	else
		return -EINVAL;
	return 0;
}

void vc_uuid_fmt(char out[37], const u8 u[16])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

static void vc_uuid_from_inode(struct vc_layer *l)
{
	uint64_t dev = l->is_blockdev ? (uint64_t)l->st.st_rdev : (uint64_t)l->st.st_dev;
	uint64_t ino = l->is_blockdev ? 0 : (uint64_t)l->st.st_ino;

	snprintf(l->uuid, sizeof(l->uuid), "%08x-%04x-%04x-%04x-%012llx",
		 (unsigned int)(dev >> 32), (unsigned int)(dev >> 16) & 0xffff,
		 (unsigned int)dev & 0xffff, (unsigned int)(ino >> 48),
		 (unsigned long long)(ino & 0xffffffffffffull));
	l->uuid_source = "inode";
}

enum vc_fmt vc_detect(const u8 *head, size_t head_len, const u8 *tail512, bool have_tail)
{
	if (head_len >= 4 && vc_get_be32(head) == QCOW2_MAGIC)
		return VC_FMT_QCOW2;
	if (have_tail && !memcmp(tail512, "conectix", 8))
		return VC_FMT_VHD;
	/* dynamic VHD whose trailing footer is damaged: libvhd uses the copy at 0 */
	if (head_len >= 512 && !memcmp(head, "conectix", 8))
		return VC_FMT_VHD;
	return VC_FMT_UNKNOWN;
}

/* UTF-16LE -> UTF-8 (surrogate pairs decoded); NULL on malformed input. */
static char *vc_utf16le_to_utf8(const u8 *in, size_t len)
{
	char *out = malloc(len * 2 + 1), *o = out;
	size_t i = 0;

	if (!out)
		return NULL;
	if (len >= 2 && in[0] == 0xff && in[1] == 0xfe)
		i = 2;	/* BOM */
	for (; i + 1 < len; i += 2) {
		uint32_t c = in[i] | (in[i + 1] << 8);

		if (c == 0)
			break;
		if (c >= 0xd800 && c <= 0xdbff) {
			uint32_t c2;

			if (i + 3 >= len)
				goto bad;
			c2 = in[i + 2] | (in[i + 3] << 8);
			if (c2 < 0xdc00 || c2 > 0xdfff)
				goto bad;
			c = 0x10000 + ((c - 0xd800) << 10) + (c2 - 0xdc00);
			i += 2;
		} else if (c >= 0xdc00 && c <= 0xdfff) {
			goto bad;
		}
		if (c < 0x80) {
			*o++ = c;
		} else if (c < 0x800) {
			*o++ = 0xc0 | (c >> 6);
			*o++ = 0x80 | (c & 0x3f);
		} else if (c < 0x10000) {
			*o++ = 0xe0 | (c >> 12);
			*o++ = 0x80 | ((c >> 6) & 0x3f);
			*o++ = 0x80 | (c & 0x3f);
		} else {
			*o++ = 0xf0 | (c >> 18);
			*o++ = 0x80 | ((c >> 12) & 0x3f);
			*o++ = 0x80 | ((c >> 6) & 0x3f);
			*o++ = 0x80 | (c & 0x3f);
		}
	}
	*o = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

char *vc_vhd_locator_decode(u32 code, const u8 *data, size_t len)
{
	char *s, *p;

	switch (code) {
	case VHD_PLAT_MACX:
		/* UTF-8 "file://<path>" */
		s = strndup((const char *)data, len);
		if (!s)
			return NULL;
		if (strncmp(s, "file://", 7)) {
			free(s);
			return NULL;
		}
		memmove(s, s + 7, strlen(s + 7) + 1);
		break;
	case VHD_PLAT_W2KU:
	case VHD_PLAT_W2RU:
		s = vc_utf16le_to_utf8(data, len);
		if (!s)
			return NULL;
		for (p = s; *p; p++)
			if (*p == '\\')
				*p = '/';
		if ((s[0] == 'C' || s[0] == 'c') && s[1] == ':')
			memmove(s, s + 2, strlen(s + 2) + 1);
		break;
	default:
		return NULL;
	}
	if (!*s) {
		free(s);
		return NULL;
	}
	return s;
}

char *vc_vhd_parent_candidate(const char *child_path, const char *loc)
{
	char *dir, *rdir, *res;

	if (loc[0] == '/')
		return strdup(loc);
	if (loc[0] == '.') {
		/* joined to the child's directory as given, not normalised */
		dir = vc_dirname(child_path);
		if (!dir)
			return NULL;
		res = vc_asprintf("%s/%s", dir, loc);
		free(dir);
		return res;
	}
	rdir = realpath(child_path, NULL);
	if (!rdir)
		return vc_asprintf("%s/%s", ".", loc);
	dir = vc_dirname(rdir);
	free(rdir);
	if (!dir)
		return NULL;
	res = vc_asprintf("%s/%s", dir, loc);
	free(dir);
	return res;
}

char *vc_qcow2_backing_path(const char *child_path, const char *name)
{
	const char *slash, *colon;

	if (!strncmp(name, "file:", 5))
		name += 5;
	colon = strchr(name, ':');
	slash = strchr(name, '/');
	if (colon && (!slash || colon < slash))
		return NULL;	/* a protocol (nbd:, json:, ...): not a file */
	if (name[0] == '/')
		return strdup(name);
	slash = strrchr(child_path, '/');
	if (!slash)
		return strdup(name);
	return vc_asprintf("%.*s%s", (int)(slash - child_path + 1), child_path, name);
}

static int vc_append_tried(char **list, const char *path)
{
	char *n;

	if (!*list)
		n = strdup(path);
	else
		n = vc_asprintf("%s, %s", *list, path);
	if (!n)
		return -ENOMEM;
	free(*list);
	*list = n;
	return 0;
}

static void vc_keyhash_xattr(int fd, struct vc_layer *l)
{
	u8 buf[65];
	ssize_t n;

	memset(&l->kh, 0, sizeof(l->kh));
	l->kh_source = "none";
	if (l->is_blockdev)
		return;
	n = fgetxattr(fd, VC_KEYHASH_XATTR, buf, sizeof(buf));
	if (n != (ssize_t)sizeof(buf))
		return;
	l->kh.set = buf[0] != 0;
	memcpy(l->kh.nonce, buf + 1, 32);
	memcpy(l->kh.hash, buf + 33, 32);
	l->kh_source = "xattr";
}

static int vc_vhd_parse(int fd, struct vc_layer *l, const u8 *tail, bool tail_ok, const u8 *head,
			unsigned int flags)
{
	u8 hdr[VHD_HEADER_SIZE], bm[VHD_BATMAP_HEADER_SIZE];
	struct vhd_batmap_header b;
	const char *why = NULL;
	u8 zero[16] = { 0 };
	int r, i;

	r = tail_ok ? vhd_footer_decode(tail, &l->vf, &why) : -EINVAL;
	if (r) {
		const char *why0 = NULL;

		/* libvhd falls back to the copy at offset 0 */
		if (l->file_size < 512 + VHD_FOOTER_SIZE ||
		    vhd_footer_decode(head, &l->vf, &why0) || l->vf.type == VHD_TYPE_FIXED)
			return vc_fail(-EMEDIUMTYPE, "%s: %s", l->path,
				       why ? why : why0 ? why0 : "no VHD footer");
		vc_log_debug("%s: trailing footer unusable (%s), using the copy at 0", l->path,
			     why ? why : "short");
	}
	vc_uuid_fmt(l->uuid, l->vf.uuid);
	l->uuid_source = "footer";
	l->virtual_size = l->vf.current_size;

	if (l->vf.type == VHD_TYPE_FIXED) {
		if (l->file_size < l->vf.current_size + VHD_FOOTER_SIZE)
			return vc_fail(-EMEDIUMTYPE, "%s: fixed VHD is shorter than its size "
				       "(%llu bytes) plus the footer", l->path,
				       (unsigned long long)l->vf.current_size);
		vc_keyhash_xattr(fd, l);
		return 0;
	}

	if (!vc_range_ok(l->vf.data_offset, VHD_HEADER_SIZE, l->file_size))
		return vc_fail(-EMEDIUMTYPE, "%s: VHD dynamic header lies outside the file",
			       l->path);
	r = vc_pread_full(fd, hdr, sizeof(hdr), l->vf.data_offset);
	if (r)
		return vc_fail(r, "%s: cannot read the VHD header: %s", l->path, strerror(-r));
	if (vhd_header_decode(hdr, &l->vh, &why) ||
	    vhd_layout_check(&l->vf, &l->vh, l->file_size, &why))
		return vc_fail(-EMEDIUMTYPE, "%s: %s", l->path, why);

	/* key hash: tapdisk batmap header, else the xattr */
	vc_keyhash_xattr(fd, l);
	if (vhd_has_batmap(&l->vf)) {
		u64 off = vhd_batmap_header_offset(&l->vh);

		if (vc_range_ok(off, sizeof(bm), l->file_size) &&
		    !vc_pread_full(fd, bm, sizeof(bm), off) &&
		    !vhd_batmap_header_decode(bm, &b, &why)) {
			l->kh.set = b.keyhash_set != 0;
			memcpy(l->kh.nonce, b.nonce, 32);
			memcpy(l->kh.hash, b.hash, 32);
			l->kh_source = "batmap";
		} else {
			vc_log_debug("%s: no usable batmap header (%s), key hash from the xattr",
				     l->path, why ? why : "read error");
		}
	}

	if (l->vf.type != VHD_TYPE_DIFF)
		return 0;

	/* parent: a null parent uuid means a raw parent (libvhd vhd_parent_raw()) */
	l->parent_fmt = memcmp(l->vh.parent_uuid, zero, 16) ? VC_FMT_VHD : VC_FMT_RAW;
	for (i = 0; i < VHD_MAX_LOCATORS && !l->parent_path; i++) {
		const struct vhd_parent_locator *loc = &l->vh.loc[i];
		char *name, *cand;
		u8 *data;

		if (loc->code != VHD_PLAT_MACX && loc->code != VHD_PLAT_W2KU &&
		    loc->code != VHD_PLAT_W2RU)
			continue;
		if (!loc->data_len || loc->data_len > vhd_locator_space(loc) ||
		    loc->data_len > 65536 ||
		    !vc_range_ok(loc->data_offset, loc->data_len, l->file_size))
			continue;
		data = malloc(loc->data_len);
		if (!data)
			return vc_fail(-ENOMEM, "out of memory");
		r = vc_pread_full(fd, data, loc->data_len, loc->data_offset);
		name = r ? NULL : vc_vhd_locator_decode(loc->code, data, loc->data_len);
		free(data);
		if (!name)
			continue;
		cand = vc_vhd_parent_candidate(l->path, name);
		free(name);
		if (!cand)
			return vc_fail(-ENOMEM, "out of memory");
		if (vc_append_tried(&l->parent_tried, cand)) {
			free(cand);
			return vc_fail(-ENOMEM, "out of memory");
		}
		if (access(cand, R_OK) == 0) {
			if (cand[0] != '.' && strncmp(cand, "./", 2)) {
				/* relative-to-realpath locators resolve to a real path */
				char *rp = realpath(cand, NULL);

				if (rp) {
					free(cand);
					cand = rp;
				}
			}
			l->parent_path = cand;
		} else {
			free(cand);
		}
	}
	if (!l->parent_path) {
		if (flags & VC_OPEN_PARENT_OPTIONAL)
			return 0;
		if (!l->parent_tried)
			return vc_fail(-EMEDIUMTYPE, "%s is a differencing VHD without a usable "
				       "parent locator", l->path);
		return vc_fail(-ENOENT, "parent image of %s not found: tried %s; restore the "
			       "parent or fix the parent locator (vhd-util modify -p)",
			       l->path, l->parent_tried);
	}
	return 0;
}

static int vc_qcow2_parse(int fd, struct vc_layer *l, const u8 *head, size_t head_len,
			  unsigned int flags)
{
	const char *why = NULL;
	size_t cl, off, doff;
	u8 *buf;
	u32 type, dlen;
	int r;

	/* the decoders want the whole first cluster (header extensions) */
	if (head_len < QCOW2_V3_HEADER_SIZE)
		return vc_fail(-EMEDIUMTYPE, "%s: qcow2 header is truncated", l->path);
	r = vc_get_be32(head + 20);
	if (r < QCOW2_MIN_CLUSTER_BITS || r > QCOW2_MAX_CLUSTER_BITS)
		return vc_fail(-EMEDIUMTYPE, "%s: qcow2 cluster size out of range", l->path);
	cl = (size_t)1 << r;
	if (cl > l->file_size)
		cl = l->file_size;
	buf = calloc(1, (size_t)1 << r);
	if (!buf)
		return vc_fail(-ENOMEM, "out of memory");
	r = vc_pread_full(fd, buf, cl, 0);
	if (r) {
		r = vc_fail(r, "%s: cannot read the qcow2 header: %s", l->path, strerror(-r));
		goto out;
	}
	r = qcow2_header_decode(buf, cl, &l->qh, &why);
	if (!r)
		r = qcow2_layout_check(&l->qh, l->file_size, &why);
	if (r) {
		r = vc_fail(r == -EOPNOTSUPP ? -ENOTSUP : -EMEDIUMTYPE, "%s: %s", l->path, why);
		goto out;
	}
	l->virtual_size = l->qh.size;

	off = l->qh.header_length;
	if (l->qh.version >= 3) {
		for (;;) {
			r = qcow2_extension_next(buf, cl, &off, &type, &doff, &dlen, &why);
			if (r < 0) {
				r = vc_fail(-EMEDIUMTYPE, "%s: %s", l->path, why);
				goto out;
			}
			if (r == 0)
				break;
			if (type == QCOW2_EXT_FDE) {
				if (dlen < 16) {
					r = vc_fail(-EMEDIUMTYPE, "%s: qcow2 encryption header "
						    "extension is too short", l->path);
					goto out;
				}
				l->fde_offset = vc_get_be64(buf + doff);
				l->fde_length = vc_get_be64(buf + doff + 8);
			} else if (type == QCOW2_EXT_BACKING_FORMAT) {
				free(l->backing_fmt);
				l->backing_fmt = strndup((const char *)buf + doff, dlen);
			}
		}
	} else {
		/* version 2 has extensions too, after the 72-byte header */
		off = QCOW2_V2_HEADER_SIZE;
		while (off + 8 <= cl &&
		       (!l->qh.backing_file_offset || off < l->qh.backing_file_offset)) {
			r = qcow2_extension_next(buf, cl, &off, &type, &doff, &dlen, &why);
			if (r <= 0)
				break;
			if (type == QCOW2_EXT_BACKING_FORMAT) {
				free(l->backing_fmt);
				l->backing_fmt = strndup((const char *)buf + doff, dlen);
			}
		}
	}

	if (l->qh.crypt_method == QCOW2_CRYPT_LUKS) {
		if (!l->fde_length) {
			r = vc_fail(-EMEDIUMTYPE, "%s: LUKS-encrypted qcow2 without its encryption "
				    "header extension", l->path);
			goto out;
		}
		if (!vc_range_ok(l->fde_offset, l->fde_length, l->file_size)) {
			r = vc_fail(-EMEDIUMTYPE, "%s: the LUKS header region lies outside the file",
				    l->path);
			goto out;
		}
		if (vc_blkid_luks(l->path, l->fde_offset, l->fde_length, l->luks_uuid,
				  sizeof(l->luks_uuid), &l->luks_version) == 1 &&
		    strlen(l->luks_uuid) == 36) {
			snprintf(l->uuid, sizeof(l->uuid), "%s", l->luks_uuid);
			l->uuid_source = "luks";
		}
	}
	if (!l->uuid[0])
		vc_uuid_from_inode(l);

	if (l->qh.backing_file_offset && l->qh.backing_file_size) {
		if (l->qh.backing_file_size > 1023) {
			r = vc_fail(-EMEDIUMTYPE, "%s: qcow2 backing file name is too long", l->path);
			goto out;
		}
		l->backing_name = strndup((const char *)buf + l->qh.backing_file_offset,
					  l->qh.backing_file_size);
		if (!l->backing_name) {
			r = vc_fail(-ENOMEM, "out of memory");
			goto out;
		}
		l->parent_path = vc_qcow2_backing_path(l->path, l->backing_name);
		if (!l->parent_path) {
			r = vc_fail(-ENOTSUP, "%s: backing file \"%s\" is not a local file",
				    l->path, l->backing_name);
			goto out;
		}
		l->parent_tried = strdup(l->parent_path);
		l->parent_fmt = VC_FMT_UNKNOWN;
		if (l->backing_fmt) {
			if (!strcmp(l->backing_fmt, "raw"))
				l->parent_fmt = VC_FMT_RAW;
			else if (!strcmp(l->backing_fmt, "qcow2"))
				l->parent_fmt = VC_FMT_QCOW2;
			else if (!strcmp(l->backing_fmt, "vpc"))
				l->parent_fmt = VC_FMT_VHD;
			else {
				r = vc_fail(-ENOTSUP, "%s: backing file format \"%s\" is not "
					    "supported (qcow2, vpc and raw are)", l->path,
					    l->backing_fmt);
				goto out;
			}
		}
		if (access(l->parent_path, R_OK) != 0) {
			if (flags & VC_OPEN_PARENT_OPTIONAL) {
				free(l->parent_path);
				l->parent_path = NULL;
				r = 0;
				goto out;
			}
			r = vc_fail(-ENOENT, "backing file of %s not found: tried %s; restore it "
				    "or fix the name (qemu-img rebase -u)", l->path, l->parent_path);
			goto out;
		}
	}
	r = 0;
out:
	free(buf);
	return r;
}

int vc_layer_open(const char *path, enum vc_fmt want, unsigned int flags, struct vc_layer **out)
{
	struct vc_layer *l;
	u8 head[4096], tail[512];
	size_t head_len;
	bool tail_ok = false;
	enum vc_fmt f;
	int fd, r;

	*out = NULL;
	l = vc_zalloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->loop.fd = -1;
	l->path = vc_strdup(path);
	if (!l->path) {
		free(l);
		return -ENOMEM;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = vc_fail(errno == EACCES ? -EACCES : -ENOENT, "cannot open image %s: %s",
			    path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &l->st) < 0) {
		r = vc_fail(-errno, "cannot stat %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(l->st.st_mode) && !S_ISBLK(l->st.st_mode)) {
		r = vc_fail(-ENOTBLK, "%s is neither a regular file nor a block device", path);
		goto fail;
	}
	l->is_blockdev = S_ISBLK(l->st.st_mode);
	r = vc_fd_size(fd, &l->file_size);
	if (r) {
		r = vc_fail(r, "cannot get the size of %s: %s", path, strerror(-r));
		goto fail;
	}
	head_len = l->file_size < sizeof(head) ? l->file_size : sizeof(head);
	memset(head, 0, sizeof(head));
	r = vc_pread_full(fd, head, head_len, 0);
	if (r) {
		r = vc_fail(r, "cannot read %s: %s", path, strerror(-r));
		goto fail;
	}
	if (l->file_size >= 512 && !vc_pread_full(fd, tail, 512, l->file_size - 512))
		tail_ok = true;

	f = vc_detect(head, head_len, tail, tail_ok);
	if (want == VC_FMT_RAW) {
		f = VC_FMT_RAW;
	} else if (f == VC_FMT_UNKNOWN) {
		if (!(flags & VC_OPEN_ALLOW_RAW)) {
			r = vc_fail(-EMEDIUMTYPE, "%s is not a VHD or qcow2 image", path);
			goto fail;
		}
		f = VC_FMT_RAW;
	} else if (want != VC_FMT_UNKNOWN && want != f) {
		r = vc_fail(-EMEDIUMTYPE, "%s is not a %s image (it looks like %s); check --type",
			    path, vc_fmt_name(want), vc_fmt_name(f));
		goto fail;
	}
	l->fmt = f;
	switch (f) {
	case VC_FMT_VHD:
		r = vc_vhd_parse(fd, l, tail, tail_ok, head, flags);
		break;
	case VC_FMT_QCOW2:
		r = vc_qcow2_parse(fd, l, head, head_len, flags);
		break;
	default:
		l->virtual_size = l->file_size & ~511ull;
		vc_uuid_from_inode(l);
		r = 0;
		break;
	}
	if (r)
		goto fail;
	close(fd);
	*out = l;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	vc_layer_free(l);
	return r;
}

void vc_layer_free(struct vc_layer *l)
{
	if (!l)
		return;
	vc_loop_release(&l->loop);
	vc_key_free(l->key);
	free(l->path);
	free(l->backing_name);
	free(l->backing_fmt);
	free(l->parent_path);
	free(l->parent_tried);
	free(l);
}

int vc_chain_open(const char *path, enum vc_fmt want, struct vc_layer **topp)
{
	struct vc_layer *top = NULL, *cur, *p, *q;
	int r;

	*topp = NULL;
	r = vc_layer_open(path, want, 0, &top);
	if (r)
		return r;
	for (cur = top; cur->parent_path; cur = cur->parent) {
		if (cur->depth + 1 >= VC_CHAIN_MAX) {
			r = vc_fail(-EMEDIUMTYPE, "%s: backing chain is longer than %d images",
				    path, VC_CHAIN_MAX);
			goto fail;
		}
		r = vc_layer_open(cur->parent_path, cur->parent_fmt,
				  cur->fmt == VC_FMT_QCOW2 && cur->parent_fmt == VC_FMT_UNKNOWN ?
				  VC_OPEN_ALLOW_RAW : 0, &p);
		if (r) {
			if (r == -ENOENT)
				r = vc_fail(-ENOENT, "parent image %s of %s cannot be opened",
					    cur->parent_path, cur->path);
			goto fail;
		}
		p->depth = cur->depth + 1;
		cur->parent = p;
		for (q = top; q != p; q = q->parent)
			if (q->st.st_dev == p->st.st_dev && q->st.st_ino == p->st.st_ino &&
			    q->is_blockdev == p->is_blockdev &&
			    (!p->is_blockdev || q->st.st_rdev == p->st.st_rdev)) {
				r = vc_fail(-EMEDIUMTYPE, "backing chain of %s loops: %s appears twice",
					    path, p->path);
				goto fail;
			}
		if (cur->fmt == VC_FMT_VHD && cur->parent_fmt == VC_FMT_VHD &&
		    memcmp(cur->vh.parent_uuid, p->vf.uuid, 16)) {
			char want_u[37];

			vc_uuid_fmt(want_u, cur->vh.parent_uuid);
			r = vc_fail(-EMEDIUMTYPE, "parent %s of %s has uuid %s, but %s expects %s "
				    "(the parent was replaced)", p->path, cur->path, p->uuid,
				    cur->path, want_u);
			goto fail;
		}
	}
	*topp = top;
	return 0;
fail:
	vc_chain_free(top);
	return r;
}

void vc_chain_free(struct vc_layer *top)
{
	struct vc_layer *n;

	while (top) {
		n = top->parent;
		vc_layer_free(top);
		top = n;
	}
}

int vc_chain_length(const struct vc_layer *top)
{
	int n = 0;

	for (; top; top = top->parent)
		n++;
	return n;
}
