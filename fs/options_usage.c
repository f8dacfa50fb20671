/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The --help text: usage, every option, with defaults. */
#include "fs/options.h"

#include <stdio.h>

#ifndef NLAYERFS_SYSCONFDIR
#define NLAYERFS_SYSCONFDIR "/etc"
#endif

/* ---- --help -------------------------------------------------------------- */

void nl_options_usage(FILE *out, const char *progname)
{
	fprintf(out,
"usage: %s [-f] [-d] -o lowerdir=DIR[:DIR...][,upperdir=DIR,workdir=DIR][,OPT...] MOUNTPOINT\n"
"       %s SOURCE MOUNTPOINT -o OPTS      (as run by mount -t fuse.nlayerfs)\n"
"       %s -o zns=DEVICE,meta=DIR[,...] MOUNTPOINT   (checkpoint mount)\n"
"\n"
"General:\n"
"  -h, --help              print this help and exit\n"
"  -V, --version           print the version and exit\n"
"  -f                      stay in the foreground\n"
"  -d, --debug, -o debug   print every request (implies -f)\n"
"  -o OPT[,OPT...]         mount options, may be given several times\n"
"\n"
"Union mount (fuse-overlayfs compatible):\n"
"  lowerdir=A:B:C          read-only layers, leftmost is topmost; \\: is a\n"
"                          literal colon, \\, a literal comma\n"
"  upperdir=DIR            writable layer; without it the mount is read-only\n"
"  workdir=DIR             scratch directory on upperdir's file system,\n"
"                          required with upperdir\n"
"  squash_to_root          every file appears owned by root\n"
"  squash_to_uid=UID       every file appears owned by UID\n"
"  squash_to_gid=GID       every file appears owned by group GID\n"
"  uidmapping=STORED:SHOWN:N[:...]\n"
"  gidmapping=STORED:SHOWN:N[:...]\n"
"                          ids STORED..STORED+N-1 in the layers show as\n"
"                          SHOWN..SHOWN+N-1 in the mount (and are written\n"
"                          back so); unmapped ids show as 65534. The order\n"
"                          of fuse-overlayfs and podman: CONTAINER_ID:HOST_ID:N\n"
"  static_nlink            directories report a link count of 1\n"
"  noxattrs=0|1            1: extended attributes are not supported (default 0)\n"
"  fsync=0|1               0: fsync does nothing (default 1); volatile = fsync=0\n"
"  timeout=SECONDS         kernel cache timeout for entries and attributes\n"
"                          (default %.0f)\n"
"\n"
"Passed to FUSE and the kernel: allow_other, allow_root, default_permissions,\n"
"  auto_unmount, ro, rw, dev, nodev, suid, nosuid, exec, noexec, sync, async,\n"
"  dirsync, atime, noatime, relatime, strictatime, lazytime (and their no*\n"
"  forms), max_read=, fsname=, subtype=, blksize=, context= and friends.\n"
"\nRequest loop: max_threads=N, max_idle_threads=N, clone_fd.\n"
"\n"
"Tiering:\n"
"  nvm=DIR                 NVM tier: promoted copies and the index\n"
"  nvm_size=SIZE           NVM budget, with K/M/G/T suffixes; 0 is unlimited\n"
"  hdd=DIR                 HDD tier\n"
"  trace=on|off            record the first opens of a cold start\n"
"  trace_window=SECONDS    the longest a start is traced after its mount\n"
"  trace_quiet=SECONDS     a start without new first opens this long is over\n"
"  host_idle=SECONDS       the tier service exits after this long unused\n"
"  promote=on|off          copy hot files to NVM in the background\n"
"  range_threshold=SIZE    bigger files: only the ranges read go to NVM\n"
"  range_unit=SIZE         granularity of those ranges\n"
"  range_slack=SIZE        also copied after each range (half before)\n"
"  layer_meta=on|off       HDD layers' metadata answered from NVM images\n"
"  writeback=on|off        copy cold files of NVM layers to HDD after a trace\n"
"  image=NAME              mount an imported image by name (no lowerdir)\n"
"  config=FILE             defaults file (default %s/nlayerfs.conf)\n"
"\n"
"Checkpoint mount (zoned storage):\n"
"  zns=DEVICE|FILE         zoned block device or emulated device file\n"
"  meta=DIR                metadata pool directory (on the NVM tier)\n"
"  zone_bw=RATE            write bandwidth of one zone group\n"
"  stripe_unit=SIZE        striping unit\n"
"  channels=N,ways=N       independent groups of a real device (it does not tell)\n"
"  bandwidth=RATE          default bandwidth a tenant asks for\n"
"  admission=fair|strict   when groups run out: share fairly, or refuse\n"
"  force_new_pool          a new meta= pool takes a device that holds data (resets it)\n"
"\n"
"Any key of nlayerfs.conf(5) is also a mount option. An unknown option stops\n"
"the mount with a message naming it; options of mount(8) (defaults, noauto,\n"
"x-*, ...) are dropped, and fuse-overlayfs' or the kernel overlay's tuning\n"
"options (threaded=, xino=, redirect_dir=, metacopy=, userxattr, ...) are\n"
"accepted with a note that they have no effect.\n",
		progname, progname, progname, NL_DEFAULT_TIMEOUT,
		NLAYERFS_SYSCONFDIR);
}
