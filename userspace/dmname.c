// SPDX-License-Identifier: GPL-2.0
/*
 * vhdcryptsetup - device names and DM UUIDs.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmname.h"
#include "util.h"

#define VC_UUID_LEN 36

int vc_check_name(const char *name)
{
	const char *p;

	if (!*name)
		return vc_fail(-EINVAL, "the device name is empty");
	if (strlen(name) > VC_NAME_MAX)
		return vc_fail(-EINVAL, "device name %s is longer than %d characters",
			       name, VC_NAME_MAX);
	if (!strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, "control"))
		return vc_fail(-EINVAL, "\"%s\" cannot be used as a device name", name);
	for (p = name; *p; p++)
		if (*p == '/' || isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			return vc_fail(-EINVAL, "device name \"%s\" contains '/', a space or "
				       "a control character", name);
	return 0;
}

char *vc_layer_dm_name(const char *name, int depth)
{
	return depth ? vc_asprintf("%s-L%d", name, depth) : vc_strdup(name);
}

char *vc_layer_dm_uuid(const char *format, const char *uuid, const char *scheme,
		       const char *name, int depth)
{
	if (depth)
		return vc_asprintf(VC_DM_UUID_PREFIX "%s-%s-%s-%s-L%d", format, uuid, scheme,
				   name, depth);
	return vc_asprintf(VC_DM_UUID_PREFIX "%s-%s-%s-%s", format, uuid, scheme, name);
}

bool vc_dm_uuid_scheme(const char *uuid, char *tag, size_t len)
{
	const char *p, *e;

	tag[0] = '\0';
	if (strncmp(uuid, VC_DM_UUID_PREFIX, strlen(VC_DM_UUID_PREFIX)))
		return false;
	p = strchr(uuid + strlen(VC_DM_UUID_PREFIX), '-');	/* after the format */
	if (!p || strlen(p + 1) < VC_UUID_LEN + 1 || p[1 + VC_UUID_LEN] != '-')
		return true;
	p += 1 + VC_UUID_LEN + 1;
	e = strchr(p, '-');
	if (e && (size_t)(e - p) < len)
		snprintf(tag, len, "%.*s", (int)(e - p), p);
	return true;
}

bool vc_dm_uuid_is_luks(const char *uuid)
{
	return !strncmp(uuid, VC_DM_CRYPT_UUID_PREFIX, strlen(VC_DM_CRYPT_UUID_PREFIX));
}
