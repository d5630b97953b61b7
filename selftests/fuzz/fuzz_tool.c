// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer harness for vhdcryptsetup's image parsing (userspace/image*.c,
 * linked from the tool's own sources): a sparse image (fuzz.h, at most
 * FZ_TOOL_MAX_IMAGE bytes) is written to a memfd and opened with
 * vc_image_open() as `vhdcryptsetup probe` and `status` open it: format
 * detection, VHD footer/header/BAT scan, parent locators (decoded from
 * UTF-8 and UTF-16, looked up with access() only), OpenXT key hash, qcow2
 * header, extensions, backing file name and L1/L2 scan.
 *
 * Besides "never crash", what it accepts must be consistent: a format, a
 * virtual size inside the format's limits.
 */
#include <sys/mman.h>
#include <unistd.h>

#include "image.h"
#include "util.h"

#include "fuzz.h"

#define FZ_TOOL_MAX_IMAGE	(64ull << 20)

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct fz_image im;
	struct vc_image *img = NULL;
	char path[64];
	int fd, r;

	if (!fz_image_parse(&im, d, n))
		return 0;
	im.size %= FZ_TOOL_MAX_IMAGE + 1;
	fd = memfd_create("fuzz-image", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)im.size))
		abort();
	for (unsigned int i = 0; i < im.nr; i++) {
		const struct fz_chunk *c = &im.chunk[i];
		size_t len = c->len;

		if (c->off >= im.size)
			continue;
		if (len > im.size - c->off)
			len = im.size - c->off;
		if (pwrite(fd, c->data, len, (off_t)c->off) != (ssize_t)len)
			abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	r = vc_image_open(path, VC_FMT_UNKNOWN, VC_OPEN_PARENT_OPTIONAL, &img);
	if (!r) {
		CHECK(img->fmt == VC_FMT_VHD || img->fmt == VC_FMT_QCOW2);
		CHECK(img->virtual_size % 512 == 0);
		if (img->fmt == VC_FMT_VHD)
			CHECK(img->virtual_size <= VHD_MAX_SECTORS * 512);
		if (img->parent_path)
			fz_touch((const uint8_t *)img->parent_path,
				 strlen(img->parent_path));
		vc_image_free(img);
	} else {
		CHECK(r < 0 && !img);
	}
	close(fd);
	return 0;
}
