/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How an image enters the store: the one public header of tier/image/.
 *
 * LASS chooses each layer's tier from a model of the download, the
 * importer extracts an image's layers into <tier dir>/layers/<chainID>/ in
 * that placement, and the registry (<nvm dir>/images) names the stored
 * images for image= mounts. Used by tools/nlayerfs-import and fs/union/.
 * It calls the tiering engine (tier/tier.h) for metadata images and sizes,
 * and is handed to it as the store whose layers may move (nl_image_store);
 * the engine calls nothing of it directly. Calls return 0 or a negative
 * errno unless said otherwise.
 */
#ifndef NLAYERFS_TIER_IMAGE_H
#define NLAYERFS_TIER_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tier/tier.h"

/* ---- LASS: layer-aware storage placement ---- */

/*
 * The model of an image deployment: layers are downloaded in parallel but
 * must be stored bottom-up, so the layer whose download completes last (the
 * LDL) holds back every layer above it. Index 0 is the bottom layer.
 * Speeds are in bytes per second, times in seconds.
 */
enum nl_lass_tier { NL_LASS_HDD = 0, NL_LASS_NVM = 1 };

/* Why a layer got its tier; nl_lass_reason_name() spells it out. */
enum nl_lass_reason {
	NL_LASS_BELOW_BOUNDARY,	/* stored under the chosen boundary: HDD */
	NL_LASS_AT_OR_ABOVE,	/* boundary layer or above it: NVM */
	NL_LASS_HISTORY_HOT,	/* history installs an engine or copies an app */
	NL_LASS_BUDGET,		/* wanted NVM, did not fit the budget: HDD */
};

/* What a layer's history line (`created_by`) says about its start-up use. */
enum nl_lass_history { NL_LASS_HIST_NEUTRAL = 0, NL_LASS_HIST_HOT, NL_LASS_HIST_COLD };

struct nl_lass_input {
	size_t n;			/* number of layers */
	const uint64_t *size;		/* bytes to store per layer */
	const double *done;		/* download completion time per layer */
	const enum nl_lass_history *history; /* may be NULL: all neutral */
	double hdd_bps;			/* HDD write speed (beta) */
	double nvm_bps;			/* NVM write speed (alpha) */
	uint64_t nvm_budget;		/* bytes; UINT64_MAX: unlimited */
};

struct nl_lass_plan {
	size_t ldl;			/* index of the last-downloading layer */
	size_t boundary;		/* layers >= boundary go to NVM (n: none) */
	double t_total;			/* modelled storing end time of the plan */
	uint64_t u_total;		/* NVM bytes of the plan, budget applied */
	double t_strategy[3];		/* best T below / at / above the LDL */
	uint64_t u_strategy[3];		/* its NVM use */
	enum nl_lass_tier *tier;	/* per layer, caller-allocated, n entries */
	enum nl_lass_reason *reason;	/* per layer, caller-allocated */
};

/* Download completion times of @n layers fetched @parallel at a time
 * (dockerd: 3) in order, sharing @bandwidth_bps equally. */
int nl_lass_model_downloads(const uint64_t *size, size_t n, double bandwidth_bps,
			    unsigned parallel, double *done);
/* The layer whose download completes last (the lowest one on a tie). */
size_t nl_lass_find_ldl(const double *done, size_t n);
/* T_total / U_total when layers >= @boundary are on NVM, by the closed-form
 * equations of the model (documented in lass.c). */
double nl_lass_t_total(const struct nl_lass_input *in, size_t boundary);
uint64_t nl_lass_u_total(const struct nl_lass_input *in, size_t boundary);
/* The same T_total by replaying the store order step by step. */
double nl_lass_simulate(const struct nl_lass_input *in, const enum nl_lass_tier *tier);
/* Choose the placement: fastest boundary, least NVM among equally fast ones,
 * history-hot layers added, budget enforced. */
int nl_lass_plan(const struct nl_lass_input *in, struct nl_lass_plan *plan);
enum nl_lass_history nl_lass_classify_history(const char *created_by);
const char *nl_lass_reason_name(enum nl_lass_reason r);

/*
 * Image import and the registry of imported images. Layers are stored in
 * <tier dir>/layers/<chainID hex>/; the registry lives in <nvm dir>/images.
 */
struct nl_import_opts {
	const char *nvm_dir, *hdd_dir;
	const char *source;		/* OCI layout dir/tar or docker-save tar */
	const char *name;		/* NULL: taken from the image's tags */
	enum { NL_PLACE_LASS, NL_PLACE_NVM, NL_PLACE_HDD } placement;
	uint64_t nvm_budget;		/* UINT64_MAX: unlimited */
	double bandwidth_bps, hdd_bps, nvm_bps;
	const double *download_done;	/* observed completion times, bottom
					 * first; NULL: modelled from bandwidth */
	size_t n_download_done;
	unsigned workers;		/* concurrent layer workers (3) */
	bool quiet;
	/* per-layer progress on stderr: none, one line per stored layer, or
	 * a status line rewritten in place (a terminal) */
	enum { NL_PROGRESS_NONE, NL_PROGRESS_LINES, NL_PROGRESS_TTY } progress;
};

/* Import one image; on error *err holds a message for the user. */
int nl_import_image(const struct nl_import_opts *o, char *err, size_t errlen);
/* "top:...:bottom" of an imported image; caller frees *lowerdir. */
int nl_registry_lowerdir(const char *nvm_dir, const char *name, char **lowerdir,
			 char *err, size_t errlen);
/* Print every image with its layers and their tiers to @out (a FILE *). */
int nl_registry_list(const char *nvm_dir, void *out, char *err, size_t errlen);
/* A stored layer root left at mkdtemp's 0700 by an earlier import becomes 0755;
 * 1 when it was changed, 0 when not needed, negative errno. */
int nl_layer_root_fix(const char *layer_dir);

/* 1 when the registry lists the layer @chain_hex (the 64 hex digits of its
 * chainID) at the directory whose real path is @real: a layer the store
 * owns, which the tier may move between its tier directories. */
int nl_registry_owns(const char *nvm_dir, const char *chain_hex, const char *real);
/* Every image's line of layer @chain_hex names @tier ("nvm", "hdd") and
 * @path from now on (one atomic replace of the registry). Returns the
 * lines changed. Take nl_store_lock() around it. */
int nl_registry_relocate(const char *nvm_dir, const char *chain_hex, const char *tier,
			 const char *path, char *err, size_t errlen);
/* The store's lock (<nvm dir>/.import.lock, the one imports hold): a
 * descriptor to close to release it, or -errno. */
int nl_store_lock(const char *nvm_dir);
/* The store as the tier engine needs it to move layers (tier_config.store):
 * nl_registry_owns, nl_registry_relocate, nl_store_lock. */
extern const struct tier_store_ops nl_image_store;

#endif
