/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LASS: layer-aware storage placement of image layers.
 *
 * Model. Layers 1..N (index 0..N-1 here, 0 = bottom) have sizes s_i and
 * download completion times D_i. A layer is stored once it is downloaded and
 * the layer below it is stored; storing takes s_i/alpha on NVM and s_i/beta
 * on HDD. With the boundary layer b, layers i >= b are on NVM:
 *
 *   (1) t_i(b)      = s_i / (i >= b ? alpha : beta)
 *   (2) E_i(b)      = max(D_i, E_{i-1}(b)) + t_i(b),  E_{-1} = 0
 *   (3) T_total(b)  = E_{N-1}(b) = max_i (D_i + sum_{j>=i} t_j(b))
 *   (4) U_total(b)  = sum_{j>=b} s_j
 * Let l be the LDL (D_l maximal) and H(b) = E_{l-1}(b), the time the layers
 * below the LDL are stored. Every term of (3) with i > l is dominated by the
 * term i = l, so:
 *   (5) b <  l: T = max(D_l, H(b)) + sum_{j>=l} s_j/alpha,
 *               U = U_total(l) + sum_{b<=j<l} s_j
 *   (6) b =  l: T = max(D_l, H(l)) + sum_{j>=l} s_j/alpha,   U = U_total(l)
 *   (7) b >  l: T = max(D_l, H(l)) + sum_{l<=j<b} s_j/beta
 *                                  + sum_{j>=b} s_j/alpha,   U = U_total(b)
 *   (8) H(b)    = max_{i<l} (D_i + sum_{i<=j<l} t_j(b))
 * So raising the boundary above l puts the LDL's storing at HDD speed on the
 * critical path (7 >= 6), and lowering it below l only helps when the layers
 * below are not hidden behind the LDL's download (H(l) > D_l), at the cost of
 * more NVM (5). The plan takes the fastest boundary and, among boundaries
 * within a tolerance of it, the one using the least NVM.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tier/image/image.h"

/* Boundaries whose T differs by less than this fraction are equally fast:
 * speeds and bandwidths are estimates, and a gain under 1% of the
 * deployment time is not worth NVM space. */
#define LASS_T_TOLERANCE 0.01

static double max_d(double a, double b)
{
	return a > b ? a : b;
}

static double store_secs(uint64_t size, double bps)
{
	return (double)size / bps;
}

static double layer_secs(const struct nl_lass_input *in, size_t i, size_t boundary)
{
	return store_secs(in->size[i], i >= boundary ? in->nvm_bps : in->hdd_bps);
}

size_t nl_lass_find_ldl(const double *done, size_t n)
{
	size_t ldl = 0;

	for (size_t i = 1; i < n; i++)
		if (done[i] > done[ldl])
			ldl = i;
	return ldl;
}

/* Equation (8): the end of storing the layers below the LDL. */
static double below_ldl_end(const struct nl_lass_input *in, size_t ldl, size_t boundary)
{
	double h = 0, tail = 0;

	for (size_t i = ldl; i-- > 0;) {
		tail += layer_secs(in, i, boundary);
		if (in->done[i] + tail > h)
			h = in->done[i] + tail;
	}
	return h;
}

static double nvm_secs_from(const struct nl_lass_input *in, size_t from)
{
	double t = 0;

	for (size_t j = from; j < in->n; j++)
		t += store_secs(in->size[j], in->nvm_bps);
	return t;
}

/* Equations (5)-(7). */
double nl_lass_t_total(const struct nl_lass_input *in, size_t boundary)
{
	size_t l = nl_lass_find_ldl(in->done, in->n);
	double start;

	if (in->n == 0)
		return 0;
	if (boundary <= l) {
		start = max_d(in->done[l], below_ldl_end(in, l, boundary));
		return start + nvm_secs_from(in, l);
	}
	start = max_d(in->done[l], below_ldl_end(in, l, l));
	for (size_t j = l; j < boundary && j < in->n; j++)
		start += store_secs(in->size[j], in->hdd_bps);
	return start + (boundary < in->n ? nvm_secs_from(in, boundary) : 0);
}

uint64_t nl_lass_u_total(const struct nl_lass_input *in, size_t boundary)
{
	uint64_t u = 0;

	for (size_t j = boundary; j < in->n; j++)
		u += in->size[j];
	return u;
}

/* Equation (2), replayed layer by layer for any tier assignment. */
double nl_lass_simulate(const struct nl_lass_input *in, const enum nl_lass_tier *tier)
{
	double end = 0;

	for (size_t i = 0; i < in->n; i++) {
		double bps = tier[i] == NL_LASS_NVM ? in->nvm_bps : in->hdd_bps;

		end = max_d(end, in->done[i]) + store_secs(in->size[i], bps);
	}
	return end;
}

int nl_lass_model_downloads(const uint64_t *size, size_t n, double bandwidth_bps,
			    unsigned parallel, double *done)
{
	double *left;
	size_t next = 0, active = 0;
	double now = 0;

	if (!(bandwidth_bps > 0) || parallel == 0)
		return -EINVAL;
	left = calloc(n ? n : 1, sizeof(*left));
	if (!left)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		done[i] = -1;
	/* Processor sharing: the active downloads split the bandwidth equally;
	 * a finished one frees its slot for the next layer in order. */
	while (next < n || active > 0) {
		while (active < parallel && next < n) {
			left[next] = (double)size[next];
			next++;
			active++;
		}
		double share = bandwidth_bps / (double)active, step = INFINITY;

		for (size_t i = 0; i < next; i++)
			if (done[i] < 0 && left[i] / share < step)
				step = left[i] / share;
		now += step;
		for (size_t i = 0; i < next; i++) {
			if (done[i] >= 0)
				continue;
			left[i] -= step * share;
			if (left[i] <= 1e-9 * (double)(size[i] + 1)) {
				done[i] = now;
				active--;
			}
		}
	}
	free(left);
	return 0;
}

/* The fastest boundary; among equally fast ones the least NVM. */
static size_t best_boundary(const struct nl_lass_input *in, size_t lo, size_t hi)
{
	size_t best = hi;
	double best_t = INFINITY;

	for (size_t b = hi + 1; b-- > lo;) {
		double t = nl_lass_t_total(in, b);

		if (b == hi || t < best_t - best_t * LASS_T_TOLERANCE) {
			best_t = t;
			best = b;
		}
	}
	return best;
}

static void note_strategies(const struct nl_lass_input *in, struct nl_lass_plan *p)
{
	size_t l = p->ldl, b;

	/* Below: boundaries 0..l-1; at: l; above: l+1..n (n = all HDD). */
	b = l > 0 ? best_boundary(in, 0, l - 1) : l;
	p->t_strategy[0] = l > 0 ? nl_lass_t_total(in, b) : NAN;
	p->u_strategy[0] = l > 0 ? nl_lass_u_total(in, b) : 0;
	p->t_strategy[1] = nl_lass_t_total(in, l);
	p->u_strategy[1] = nl_lass_u_total(in, l);
	b = best_boundary(in, l + 1, in->n);
	p->t_strategy[2] = nl_lass_t_total(in, b);
	p->u_strategy[2] = nl_lass_u_total(in, b);
}

/* Put one layer on NVM if the budget allows, else note the fallback. */
static void want_nvm(const struct nl_lass_input *in, struct nl_lass_plan *p, size_t i,
		     enum nl_lass_reason why)
{
	if (p->tier[i] == NL_LASS_NVM)
		return;
	if (in->size[i] > in->nvm_budget - p->u_total) {
		p->reason[i] = NL_LASS_BUDGET;
		return;
	}
	p->tier[i] = NL_LASS_NVM;
	p->reason[i] = why;
	p->u_total += in->size[i];
}

int nl_lass_plan(const struct nl_lass_input *in, struct nl_lass_plan *p)
{
	if (in->n == 0 || !in->size || !in->done || !p->tier || !p->reason ||
	    !(in->hdd_bps > 0) || !(in->nvm_bps > 0))
		return -EINVAL;
	p->ldl = nl_lass_find_ldl(in->done, in->n);
	p->boundary = best_boundary(in, 0, in->n);
	note_strategies(in, p);
	p->u_total = 0;
	for (size_t i = 0; i < in->n; i++) {
		p->tier[i] = NL_LASS_HDD;
		p->reason[i] = NL_LASS_BELOW_BOUNDARY;
	}
	/* The boundary layer comes first: it is the one on the critical path,
	 * the layers above it wait for it. */
	for (size_t i = p->boundary; i < in->n; i++)
		want_nvm(in, p, i, NL_LASS_AT_OR_ABOVE);
	for (size_t i = in->n; i-- > 0;)
		if (in->history && in->history[i] == NL_LASS_HIST_HOT)
			want_nvm(in, p, i, NL_LASS_HISTORY_HOT);
	p->t_total = nl_lass_simulate(in, p->tier);
	return 0;
}

const char *nl_lass_reason_name(enum nl_lass_reason r)
{
	switch (r) {
	case NL_LASS_BELOW_BOUNDARY: return "below the LASS boundary";
	case NL_LASS_AT_OR_ABOVE: return "LASS boundary layer or above";
	case NL_LASS_HISTORY_HOT: return "history: execution engine or application files";
	case NL_LASS_BUDGET: return "NVM budget exhausted, fell back to HDD";
	}
	return "?";
}

/* ---- static analysis of history lines ---- */

/* Interpreters and runtimes whose files a container reads at start-up. */
static const char *const engines[] = {
	"python", "pip", "java", "openjdk", "jdk", "jre", "node", "npm", "yarn",
	"ruby", "gem", "bundle", "bundler", "php", "composer", "perl", "dotnet",
	"deno", "nodejs", "javac", "rubygems",
};

static bool word_is_engine(const char *w, size_t len)
{
	for (size_t k = 0; k < sizeof(engines) / sizeof(engines[0]); k++) {
		size_t el = strlen(engines[k]);

		/* "python3.11" and "php8" name engines, "pipeline" does not. */
		if (len >= el && strncasecmp(w, engines[k], el) == 0 &&
		    (len == el || !isalpha((unsigned char)w[el])))
			return true;
	}
	return false;
}

static bool is_word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '+';
}

static bool mentions_engine(const char *s)
{
	while (*s) {
		while (*s && !is_word_char(*s))
			s++;
		const char *w = s;

		while (is_word_char(*s))
			s++;
		if (s > w && word_is_engine(w, (size_t)(s - w)))
			return true;
	}
	return false;
}

/* After "COPY"/"ADD" (classic "#(nop) ADD file:x in /dst" or BuildKit
 * "COPY src /dst # buildkit"), the destination; NULL when none. */
static const char *copy_destination(const char *s, char *buf, size_t len)
{
	const char *p = strstr(s, " in "), *end;

	if (p) {
		p += 4;
	} else {
		end = strstr(s, " # buildkit");
		if (!end)
			end = s + strlen(s);
		while (end > s && isspace((unsigned char)end[-1]))
			end--;
		p = end;
		while (p > s && !isspace((unsigned char)p[-1]))
			p--;
		if (p == end)
			return NULL;
		snprintf(buf, len, "%.*s", (int)(end - p), p);
		return buf;
	}
	while (*p == ' ')
		p++;
	snprintf(buf, len, "%s", p);
	buf[strcspn(buf, " \t")] = '\0';
	return buf;
}

static const char *copy_op(const char *s)
{
	const char *nop = strstr(s, "#(nop)");

	if (nop)
		s = nop + 6;
	while (isspace((unsigned char)*s))
		s++;
	if (strncmp(s, "COPY ", 5) == 0 || strncmp(s, "ADD ", 4) == 0)
		return s;
	return NULL;
}

/*
 * A layer that copies files somewhere other than / holds the application;
 * one that unpacks a root file system (ADD to /) or installs only packages
 * holds binaries and system libraries, unless an execution engine is named.
 */
enum nl_lass_history nl_lass_classify_history(const char *created_by)
{
	const char *op;
	char dst[256];

	if (!created_by || !*created_by)
		return NL_LASS_HIST_NEUTRAL;
	op = copy_op(created_by);
	if (op) {
		const char *d = copy_destination(op, dst, sizeof(dst));

		if (d && strcmp(d, "/") != 0)
			return NL_LASS_HIST_HOT;
		return mentions_engine(op) ? NL_LASS_HIST_HOT : NL_LASS_HIST_COLD;
	}
	return mentions_engine(created_by) ? NL_LASS_HIST_HOT : NL_LASS_HIST_COLD;
}
