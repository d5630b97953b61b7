// SPDX-License-Identifier: GPL-2.0
/*
 * Runs a harness once per input file, without libFuzzer: the unit tests
 * replay the committed crash inputs with it (built with any compiler, with
 * ASan and UBSan).
 *
 *   fuzz_X-replay FILE|DIR...
 *
 * Prints "N inputs" and exits 0 when all ran; a failed invariant aborts.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned long replayed;

static void replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;

	if (!f) {
		perror(path);
		exit(2);
	}
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 65536;
			buf = realloc(buf, cap);
			if (!buf)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n);
	fclose(f);
	/* An exact-size copy, so ASan sees reads past the input. */
	{
		uint8_t *exact = fz_slice(buf, len, 0, len);

		free(buf);
		LLVMFuzzerTestOneInput(exact, len);
		free(exact);
	}
	replayed++;
}

static void replay(const char *path)
{
	struct dirent *e;
	struct stat st;
	char sub[4096];
	DIR *d;

	if (stat(path, &st)) {
		perror(path);
		exit(2);
	}
	if (!S_ISDIR(st.st_mode)) {
		replay_file(path);
		return;
	}
	d = opendir(path);
	if (!d) {
		perror(path);
		exit(2);
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		replay(sub);
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		replay(argv[i]);
	printf("%lu inputs\n", replayed);
	return 0;
}
