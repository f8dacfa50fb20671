/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small helpers of the tiering engine (tier_util.c): fault points for the
 * tests, messages, hashing, clocks, durable directory updates.
 */
#ifndef NLAYERFS_TIER_UTIL_H
#define NLAYERFS_TIER_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void tier_fault(const char *point);
void tier_write_behind(int fd, uint64_t written, uint64_t *started);
void tier_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
struct tier_ctx;
/* tier_config.c: a message for the program, through the config's log hook. */
void tier_log(const struct tier_ctx *ctx, int priority, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
uint64_t tier_hash_key(const char *layer_id, const char *path);
uint64_t tier_now_mono_ns(void);
void tier_hex(const uint8_t *d, size_t n, char *out);
int tier_fsync_dir(const char *dir);
bool tier_path_ok(const char *relpath);

#endif
