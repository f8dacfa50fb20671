/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * -o image=NAME: the layers of an image imported with nlayerfs-import,
 * looked up in the registry on the NVM tier, instead of a lowerdir list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "fs/union/union.h"
#include "tier/image/image.h"

int nl_image_layers(struct nl_options *o, char *err, size_t errlen)
{
	const char *name = nl_options_extra(o, "image");
	const char *nvm = nl_options_extra(o, "nvm");
	char *lowerdir = NULL;
	char **dirs;
	int n;

	if (!name)
		return 0;
	if (o->n_lower) {
		snprintf(err, errlen, "image= and lowerdir= exclude each other");
		return -EINVAL;
	}
	if (!nvm) {
		snprintf(err, errlen, "image=%s needs nvm=DIR, the NVM tier that holds the image registry",
			 name);
		return -EINVAL;
	}
	if (nl_registry_lowerdir(nvm, name, &lowerdir, err, errlen))
		return -ENOENT;
	n = nl_split_lowerdirs(lowerdir, &dirs);
	free(lowerdir);
	if (n <= 0) {
		snprintf(err, errlen, "image %s: the registry lists no layers", name);
		return -EINVAL;
	}
	/* Imports before the layer root got its mode left it 0700, which
	 * denies every non-root user the whole image. */
	for (int i = 0; i < n; i++)
		nl_layer_root_fix(dirs[i]);
	o->lowerdirs = dirs;
	o->n_lower = n;
	return 0;
}
