/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The registry of imported images: <nvm dir>/images, a text file
 *
 *   nlayerfs-images 1
 *   image NAME DIGEST NLAYERS
 *   layer nvm|hdd CHAINID UNPACKED_BYTES PATH     (bottom layer first)
 *
 * Names, digests and paths hold no white space (checked on import). The
 * file is replaced atomically (temp file, fsync, rename), so readers never
 * see half an update.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

#include "tier/image/import_private.h"
#include "tier/image/image.h"

#define REG_MAGIC "nlayerfs-images 1"

struct reg_layer {
	char tier[4];
	char chain[72];
	uint64_t size;
	char path[PATH_MAX];
};

struct reg_image {
	char name[256];
	char digest[72];
	size_t n;
	struct reg_layer *l;
};

struct registry {
	size_t n;
	struct reg_image *img;
};

static void reg_free(struct registry *reg)
{
	for (size_t i = 0; i < reg->n; i++)
		free(reg->img[i].l);
	free(reg->img);
	reg->img = NULL;
	reg->n = 0;
}

static int parse_image_line(struct registry *reg, const char *line, size_t *want)
{
	struct reg_image *v = realloc(reg->img, (reg->n + 1) * sizeof(*v)), *im;

	if (!v)
		return -ENOMEM;
	reg->img = v;
	im = &v[reg->n];
	memset(im, 0, sizeof(*im));
	if (sscanf(line, "image %255s %71s %zu", im->name, im->digest, want) != 3 ||
	    *want == 0 || *want > 4096)
		return -EINVAL;
	im->l = calloc(*want, sizeof(*im->l));
	if (!im->l)
		return -ENOMEM;
	reg->n++;
	return 0;
}

static int parse_layer_line(struct registry *reg, const char *line, size_t want)
{
	struct reg_image *im = reg->n ? &reg->img[reg->n - 1] : NULL;
	struct reg_layer *l;

	if (!im || im->n >= want)
		return -EINVAL;
	l = &im->l[im->n];
	if (sscanf(line, "layer %3s %71s %" SCNu64 " %4095s", l->tier, l->chain, &l->size,
		   l->path) != 4)
		return -EINVAL;
	im->n++;
	return 0;
}

static int reg_load(const char *nvm_dir, struct registry *reg, char *err, size_t errlen)
{
	char path[PATH_MAX], line[PATH_MAX + 256];
	size_t want = 0, lineno = 1;
	FILE *f;
	int r = 0;

	memset(reg, 0, sizeof(*reg));
	snprintf(path, sizeof(path), "%s/images", nvm_dir);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : nl_errf(err, errlen, -errno, "%s: %s", path, strerror(errno));
	if (!fgets(line, sizeof(line), f) || strncmp(line, REG_MAGIC, strlen(REG_MAGIC)) != 0)
		r = -EINVAL;
	while (!r && fgets(line, sizeof(line), f)) {
		lineno++;
		if (strncmp(line, "image ", 6) == 0)
			r = parse_image_line(reg, line, &want);
		else if (strncmp(line, "layer ", 6) == 0)
			r = parse_layer_line(reg, line, want);
		else
			r = -EINVAL;
	}
	fclose(f);
	if (r) {
		reg_free(reg);
		return nl_errf(err, errlen, r, "%s: malformed registry at line %zu", path, lineno);
	}
	return 0;
}

static void write_image(FILE *f, const struct reg_image *im)
{
	fprintf(f, "image %s %s %zu\n", im->name, im->digest, im->n);
	for (size_t i = 0; i < im->n; i++)
		fprintf(f, "layer %s %s %" PRIu64 " %s\n", im->l[i].tier, im->l[i].chain,
			im->l[i].size, im->l[i].path);
}

/* The rename itself must survive a crash, not only the file's data. */
static void sync_parent(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

/* @reg with @add in place of the image of its name (NULL: @reg as it is). */
static int reg_save(const char *nvm_dir, const struct registry *reg, const struct reg_image *add,
		    char *err, size_t errlen)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	FILE *f;
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/images", nvm_dir);
	snprintf(tmp, sizeof(tmp), "%s/.images.tmp-XXXXXX", nvm_dir);
	fd = mkstemp(tmp);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		return nl_errf(err, errlen, -errno, "%s: %s", tmp, strerror(errno));
	fprintf(f, REG_MAGIC "\n");
	for (size_t i = 0; i < reg->n; i++)
		if (!add || strcmp(reg->img[i].name, add->name) != 0)
			write_image(f, &reg->img[i]);
	if (add)
		write_image(f, add);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		r = -errno;
	if (fclose(f) != 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) != 0)
		r = -errno;
	if (!r)
		sync_parent(nvm_dir);
	if (r) {
		unlink(tmp);
		return nl_errf(err, errlen, r, "writing %s: %s", path, strerror(-r));
	}
	return 0;
}

/* A present layer was not unpacked this time: its size is in the registry. */
static uint64_t known_size(const struct registry *reg, const char *chain)
{
	for (size_t i = 0; i < reg->n; i++)
		for (size_t k = 0; k < reg->img[i].n; k++)
			if (strcmp(reg->img[i].l[k].chain, chain) == 0)
				return reg->img[i].l[k].size;
	return 0;
}

int nl_registry_put(const char *nvm_dir, const struct nl_image *img, char *err, size_t errlen)
{
	struct registry reg;
	struct reg_image add = { .n = img->n };
	int r = reg_load(nvm_dir, &reg, err, errlen);

	if (r)
		return r;
	add.l = calloc(img->n, sizeof(*add.l));
	if (!add.l) {
		reg_free(&reg);
		return -ENOMEM;
	}
	snprintf(add.name, sizeof(add.name), "%s", img->name);
	snprintf(add.digest, sizeof(add.digest), "%s", img->digest);
	for (size_t i = 0; i < img->n; i++) {
		const struct nl_image_layer *l = &img->layers[i];

		snprintf(add.l[i].tier, sizeof(add.l[i].tier), "%s",
			 l->tier == NL_LASS_NVM ? "nvm" : "hdd");
		snprintf(add.l[i].chain, sizeof(add.l[i].chain), "%s", l->chain_id);
		snprintf(add.l[i].path, sizeof(add.l[i].path), "%s", l->path);
		add.l[i].size = l->present ? known_size(&reg, l->chain_id) : l->tar_size;
	}
	r = reg_save(nvm_dir, &reg, &add, err, errlen);
	free(add.l);
	reg_free(&reg);
	return r;
}

static const struct reg_layer *first_with_chain(const struct registry *reg, const char *chain)
{
	for (size_t i = 0; i < reg->n; i++)
		for (size_t k = 0; k < reg->img[i].n; k++)
			if (strcmp(reg->img[i].l[k].chain, chain) == 0)
				return &reg->img[i].l[k];
	return NULL;
}

uint64_t nl_registry_nvm_use(const char *nvm_dir)
{
	struct registry reg;
	char err[64];
	uint64_t used = 0;

	if (reg_load(nvm_dir, &reg, err, sizeof(err)))
		return 0;
	for (size_t i = 0; i < reg.n; i++)
		for (size_t k = 0; k < reg.img[i].n; k++) {
			const struct reg_layer *l = &reg.img[i].l[k];

			/* a layer shared by images counts once */
			if (strcmp(l->tier, "nvm") == 0 && first_with_chain(&reg, l->chain) == l)
				used += l->size;
		}
	reg_free(&reg);
	return used;
}

static const struct reg_image *find_image(const struct registry *reg, const char *name)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->img[i].name, name) == 0)
			return &reg->img[i];
	return NULL;
}

int nl_registry_lowerdir(const char *nvm_dir, const char *name, char **lowerdir,
			 char *err, size_t errlen)
{
	struct registry reg;
	const struct reg_image *im;
	size_t len = 1;
	int r = reg_load(nvm_dir, &reg, err, errlen);

	if (r)
		return r;
	im = find_image(&reg, name);
	if (!im) {
		reg_free(&reg);
		return nl_errf(err, errlen, -ENOENT, "no image named '%s' in %s/images", name, nvm_dir);
	}
	for (size_t i = 0; i < im->n; i++)
		len += strlen(im->l[i].path) + 1;
	*lowerdir = calloc(1, len);
	if (!*lowerdir) {
		reg_free(&reg);
		return -ENOMEM;
	}
	/* overlay wants the topmost layer first */
	for (size_t i = im->n; i-- > 0;) {
		strcat(*lowerdir, im->l[i].path);
		if (i)
			strcat(*lowerdir, ":");
	}
	reg_free(&reg);
	return 0;
}

int nl_registry_list(const char *nvm_dir, void *out, char *err, size_t errlen)
{
	struct registry reg;
	FILE *f = out;
	int r = reg_load(nvm_dir, &reg, err, errlen);

	if (r)
		return r;
	for (size_t i = 0; i < reg.n; i++) {
		const struct reg_image *im = &reg.img[i];

		fprintf(f, "%s %s %zu layers\n", im->name, im->digest, im->n);
		for (size_t k = im->n; k-- > 0;)
			fprintf(f, "  %-3s %10.1f MiB %s\n", im->l[k].tier,
				(double)im->l[k].size / (1024.0 * 1024.0), im->l[k].path);
	}
	reg_free(&reg);
	return 0;
}

/* "sha256:<hex>" in the registry, the bare hex in a layer's directory name. */
static bool chain_is(const struct reg_layer *l, const char *chain_hex)
{
	const char *c = strncmp(l->chain, "sha256:", 7) ? l->chain : l->chain + 7;

	return !strcmp(c, chain_hex);
}

static bool same_place(const char *path, const char *real)
{
	char r[PATH_MAX];

	return realpath(path, r) && !strcmp(r, real);
}

int nl_registry_owns(const char *nvm_dir, const char *chain_hex, const char *real)
{
	struct registry reg;
	char err[64];
	bool owns = false;

	if (reg_load(nvm_dir, &reg, err, sizeof(err)))
		return 0;
	for (size_t i = 0; i < reg.n && !owns; i++)
		for (size_t k = 0; k < reg.img[i].n && !owns; k++)
			owns = chain_is(&reg.img[i].l[k], chain_hex) &&
			       same_place(reg.img[i].l[k].path, real);
	reg_free(&reg);
	return owns;
}

int nl_registry_relocate(const char *nvm_dir, const char *chain_hex, const char *tier,
			 const char *path, char *err, size_t errlen)
{
	struct registry reg;
	size_t changed = 0;
	int r = reg_load(nvm_dir, &reg, err, errlen);

	if (r)
		return r;
	for (size_t i = 0; i < reg.n; i++)
		for (size_t k = 0; k < reg.img[i].n; k++) {
			struct reg_layer *l = &reg.img[i].l[k];

			if (!chain_is(l, chain_hex) ||
			    (!strcmp(l->tier, tier) && !strcmp(l->path, path)))
				continue;
			snprintf(l->tier, sizeof(l->tier), "%s", tier);
			snprintf(l->path, sizeof(l->path), "%s", path);
			changed++;
		}
	r = changed ? reg_save(nvm_dir, &reg, NULL, err, errlen) : 0;
	reg_free(&reg);
	return r < 0 ? r : (int)changed;
}

int nl_store_lock(const char *nvm_dir)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/.import.lock", nvm_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX)) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

const struct tier_store_ops nl_image_store = {
	.owns = nl_registry_owns,
	.relocate = nl_registry_relocate,
	.lock = nl_store_lock,
};
