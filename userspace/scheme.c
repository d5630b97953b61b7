// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - which key scheme each layer of a chain has, and the steps
 * every scheme shares.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheme.h"
#include "scheme-openxt.h"
#include "util.h"

const struct vc_scheme vc_scheme_none = { .name = "none", .tag = "NONE" };

static const struct vc_scheme *const vc_schemes[] = {
	&vc_scheme_none, &vc_scheme_openxt, &vc_scheme_luks, &vc_scheme_aes, &vc_scheme_header,
};

const struct vc_scheme *vc_scheme_by_tag(const char *tag)
{
	size_t i;

	for (i = 0; i < sizeof(vc_schemes) / sizeof(vc_schemes[0]); i++)
		if (!strcmp(vc_schemes[i]->tag, tag))
			return vc_schemes[i];
	return NULL;
}

static const struct vc_scheme *vc_qcow2_scheme(const struct vc_image *img)
{
	switch (img->qcow2.header.crypt_method) {
	case QCOW2_CRYPT_LUKS:
		return &vc_scheme_luks;
	case QCOW2_CRYPT_AES:
		return &vc_scheme_aes;
	default:
		return &vc_scheme_none;
	}
}

const struct vc_scheme *vc_layer_scheme(const struct vc_key_opts *o, const struct vc_chain *c,
					int i)
{
	const struct vc_image *img = c->img[i];

	if (o->header)	/* its key covers the whole disk: the layers below are plain */
		return i == 0 ? &vc_scheme_header : &vc_scheme_none;
	if (img->fmt == VC_FMT_VHD)
		return &vc_scheme_openxt;
	if (img->fmt == VC_FMT_QCOW2)
		return vc_qcow2_scheme(img);
	return &vc_scheme_none;
}

const struct vc_scheme *vc_layer_encryption(const struct vc_chain *c, int i)
{
	if (c->img[i]->fmt == VC_FMT_QCOW2)
		return vc_qcow2_scheme(c->img[i]);
	if (c->img[i]->fmt == VC_FMT_VHD && vc_openxt_keyed(c, i))
		return &vc_scheme_openxt;
	return &vc_scheme_none;
}

static void vc_crypt_set_none(struct vc_crypt *out)
{
	snprintf(out->cipher, sizeof(out->cipher), "none");
}

/* One step (prepare or unlock) for every layer. */
static int vc_chain_step(struct vc_unlock *u, const struct vc_chain *c, struct vc_crypt *crypt,
			 bool unlock)
{
	int (*step)(struct vc_unlock *u, const struct vc_chain *c, int i, struct vc_crypt *out);
	int i, r;

	for (i = 0; i < c->n; i++) {
		step = unlock ? crypt[i].scheme->unlock : crypt[i].scheme->prepare;
		r = step ? step(u, c, i, &crypt[i]) : 0;
		if (r)
			return r;
	}
	return 0;
}

int vc_chain_prepare(struct vc_unlock *u, const struct vc_chain *c, struct vc_crypt *crypt)
{
	int i;

	for (i = 0; i < c->n; i++) {
		crypt[i].scheme = vc_layer_scheme(u->o, c, i);
		crypt[i].loop.fd = -1;
		vc_crypt_set_none(&crypt[i]);
	}
	return vc_chain_step(u, c, crypt, false);
}

int vc_chain_unlock(struct vc_unlock *u, const struct vc_chain *c, struct vc_crypt *crypt)
{
	return vc_chain_step(u, c, crypt, true);
}

void vc_unlock_done(struct vc_unlock *u)
{
	if (u->keydirs) {
		vc_keydirs_free(u->keydirs);
		free(u->keydirs);
		u->keydirs = NULL;
	}
}

void vc_crypt_clear(struct vc_crypt *crypt, int n)
{
	int i;

	for (i = 0; i < n; i++) {
		vc_secret_free(crypt[i].key);
		vc_luks_free(crypt[i].luks);
		vc_loop_release(&crypt[i].loop);
		free(crypt[i].key_source);
		memset(&crypt[i], 0, sizeof(crypt[i]));
		crypt[i].loop.fd = -1;
	}
}
