// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - opening a backing chain.
 */
#include <errno.h>
#include <string.h>

#include "chain.h"
#include "util.h"

static bool vc_same_file(const struct vc_image *a, const struct vc_image *b)
{
	return a->is_blockdev == b->is_blockdev &&
	       (a->is_blockdev ? a->st.st_rdev == b->st.st_rdev :
				 a->st.st_dev == b->st.st_dev && a->st.st_ino == b->st.st_ino);
}

/* The parent p of child c: no loop, and a VHD parent is the one the child expects. */
static int vc_chain_check(const struct vc_chain *c, const struct vc_image *child,
			  const struct vc_image *p)
{
	char want[37];
	int i;

	for (i = 0; i < c->n; i++)
		if (vc_same_file(c->img[i], p))
			return vc_fail(-EMEDIUMTYPE, "backing chain of %s loops: %s appears twice",
				       c->img[0]->path, p->path);
	if (child->fmt == VC_FMT_VHD && child->parent_fmt == VC_FMT_VHD &&
	    memcmp(child->vhd.header.parent_uuid, p->vhd.footer.uuid, 16)) {
		vc_uuid_fmt(want, child->vhd.header.parent_uuid);
		return vc_fail(-EMEDIUMTYPE, "parent %s of %s has uuid %s, but %s expects %s "
			       "(the parent was replaced)", p->path, child->path, p->uuid,
			       child->path, want);
	}
	return 0;
}

int vc_chain_open(const char *path, enum vc_fmt want, unsigned int flags, struct vc_chain *c)
{
	unsigned int pflags = flags & VC_OPEN_PARENT_OPTIONAL;
	struct vc_image *cur, *p;
	int r;

	memset(c, 0, sizeof(*c));
	r = vc_image_open(path, want, flags, &cur);
	if (r)
		return r;
	c->img[c->n++] = cur;
	for (; cur->parent_path; cur = p) {
		if (c->n == VC_CHAIN_MAX) {
			r = vc_fail(-EMEDIUMTYPE, "%s: backing chain is longer than %d images",
				    path, VC_CHAIN_MAX);
			goto fail;
		}
		/* a qcow2 backing file without a format extension may be raw */
		r = vc_image_open(cur->parent_path, cur->parent_fmt,
				  pflags | (cur->fmt == VC_FMT_QCOW2 &&
					    cur->parent_fmt == VC_FMT_UNKNOWN ?
					    VC_OPEN_ALLOW_RAW : 0), &p);
		if (r && pflags) {	/* probe, status: the chain ends here */
			vc_clear_error();
			return 0;
		}
		if (r)
			goto fail;
		r = vc_chain_check(c, cur, p);
		if (r) {
			vc_image_free(p);
			goto fail;
		}
		c->img[c->n++] = p;
	}
	return 0;
fail:
	vc_chain_free(c);
	return r;
}

void vc_chain_free(struct vc_chain *c)
{
	int i;

	for (i = 0; i < c->n; i++)
		vc_image_free(c->img[i]);
	c->n = 0;
}
