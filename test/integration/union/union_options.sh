#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Daemon options with fuse-overlayfs' meaning: id mappings, squashing,
# static_nlink, noxattrs, ro, escaped colons in lowerdir, the cleaning of
# workdir/work, the SOURCE MOUNTPOINT form, suid by default when run by
# root, the options other programs pass. These are options of a FUSE
# daemon; the kernel overlay has none of them.
. "$(dirname "$0")/../lib.sh"
nl_init
[ "$IMPL" != kernel ] || SKIP_ALL="options of the FUSE daemon, not of the kernel overlay"

# fresh LAYERS_OPTS: a new set with a few owned files, mounted with OPTS
fresh() {
	new_layers 2
	[ -z "$SKIP_ALL" ] || return 0
	echo a >"$D/l2/owned"; chown 1000:1000 "$D/l2/owned"
	echo r >"$D/l2/rootf"
	mkdir -p "$D/l2/dir/sub" "$D/l1/dir"
	setfattr -n user.x -v 1 "$D/l2/owned"
	freeze_lowers
	nl_mount "$1"
}
unmount_set() { [ -n "$SKIP_ALL" ] || ! is_mounted "$MNT" || nl_umount; }

# fuse-overlayfs reads a mapping as STORED:SHOWN:COUNT (checked with 1.10:
# uidmapping=1000:0:65536 shows a file stored as 1000 as 0); nlayerfs is a
# drop-in for it, so the same string must mean the same.
fresh uidmapping=1000:0:65536,gidmapping=1000:0:65536 || SKIP_ALL="mount failed"
check "uidmapping/gidmapping: a file stored as 1000:1000 shows as 0:0" \
	eval 'eq "$(stat -c %u:%g "$MNT/owned")" 0:0'
check "uidmapping/gidmapping: a new file by root is stored as 1000:1000" \
	eval 'echo n >"$MNT/new" && eq "$(stat -c %u:%g "$U/new")" 1000:1000 && eq "$(stat -c %u:%g "$MNT/new")" 0:0'
check "uidmapping: chown to 5 through the mount stores 1005" \
	eval 'chown 5:6 "$MNT/new" && eq "$(stat -c %u:%g "$U/new")" 1005:1006'
unmount_set

fresh squash_to_root || SKIP_ALL=${SKIP_ALL:-"mount failed"}
check "squash_to_root: every file shows as 0:0" \
	eval 'eq "$(find "$MNT" -printf "%U:%G\n" | sort -u)" 0:0'
unmount_set
fresh squash_to_uid=123,squash_to_gid=456 || SKIP_ALL=${SKIP_ALL:-"mount failed"}
check "squash_to_uid/squash_to_gid: every file shows as 123:456" \
	eval 'eq "$(find "$MNT" -printf "%U:%G\n" | sort -u)" 123:456'
unmount_set

fresh static_nlink || SKIP_ALL=${SKIP_ALL:-"mount failed"}
check "static_nlink: directories report st_nlink 1" \
	eval 'eq "$(stat -c %h "$MNT/dir")" 1'
unmount_set

fresh noxattrs=1 || SKIP_ALL=${SKIP_ALL:-"mount failed"}
check "noxattrs=1: getxattr fails with ENOTSUP" expect_errno EOPNOTSUPP getxattr "$MNT/owned" user.x
check "noxattrs=1: setxattr fails with ENOTSUP" expect_errno EOPNOTSUPP setxattr "$MNT/owned" user.y 1
unmount_set

fresh ro || SKIP_ALL=${SKIP_ALL:-"mount failed"}
check "ro with an upperdir: reads work, writes are EROFS" \
	eval 'eq "$(cat "$MNT/rootf")" r && expect_errno EROFS open "$MNT/n" wc && expect_errno EROFS unlink "$MNT/rootf"'
unmount_set

junk() {
	new_layers 1
	echo x >"$D/l1/f"; mkdir -p "$W/work/stale/deeper"; echo old >"$W/work/stale/deeper/junk"
	nl_mount || return 1
	[ -z "$(find "$W/work" -mindepth 1 2>/dev/null)" ] || { echo "workdir/work not emptied:"; find "$W/work"; return 1; }
	local rc=0
	echo y >"$MNT/g" && eq "$(cat "$MNT/f")" x || rc=1
	nl_umount
	return $rc
}
check "workdir/work is emptied at mount" junk
unmount_set

escaped() {
	new_layers 1
	mkdir -p "$D/a:b"; echo colon >"$D/a:b/c"
	LOWERS="$D/a\\:b:$D/l1"
	echo l1 >"$D/l1/below"
	nl_mount || return 1
	local rc=0
	eq "$(cat "$MNT/c")$(cat "$MNT/below")" colonl1 || rc=1
	nl_umount
	return $rc
}
# fuse-overlayfs 1.10 splits at every colon; the issue asks for \: escapes
check_nl "lowerdir with an escaped colon (a\\:b)" "fuse-overlayfs splits at every colon" escaped
unmount_set

source_form() {
	new_layers 1
	echo s >"$D/l1/s"
	local bin=$NLAYERFS
	[ "$IMPL" != fuse-overlayfs ] || bin=fuse-overlayfs
	timeout 20 "$bin" nlayerfs "$MNT" -o "lowerdir=$LOWERS,upperdir=$U,workdir=$W,dev,suid" || return 1
	MOUNTED+=("$MNT")
	local rc=0
	eq "$(cat "$MNT/s")" s || rc=1
	nl_umount
	return $rc
}
check "invocation as SOURCE MOUNTPOINT -o OPTS (what mount.fuse3 runs)" source_form
unmount_set
# mount_flags MNT: the per-mount flags field of mountinfo ("rw,nosuid,...")
mount_flags() { awk -v m="$1" '$5 == m { print $6 }' /proc/self/mountinfo; }

# suid_set [OPTS]: a lower layer holding a setuid-root copy of id(1), which
# prints "euid=0(root)" when the setuid bit took effect.
suid_set() {
	new_layers 1
	[ -z "$SKIP_ALL" ] || return 0
	cp /usr/bin/id "$D/l1/id" && chown 0:0 "$D/l1/id" && chmod 4755 "$D/l1/id"
	freeze_lowers
	nl_mount "$1"
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# fuse-overlayfs mounts suid when run by root; libfuse alone mounts nosuid,
# and su, sudo or ping then fail inside containers.
suid_set || SKIP_ALL=${SKIP_ALL:-"mount failed"}
check "run by root: mounted without nosuid ($(mount_flags "$MNT"))" \
	eval '! mount_flags "$MNT" | grep -qw nosuid'
check "a setuid-root program of a lower layer run by uid 65534 gets euid 0" \
	eval 'out=$(as_nobody "$MNT/id") && echo "$out" && grep -q "euid=0(" <<<"$out"'
unmount_set
suid_set nosuid || SKIP_ALL=${SKIP_ALL:-"mount failed"}
check "-o nosuid: mounted nosuid ($(mount_flags "$MNT"))" \
	eval 'mount_flags "$MNT" | grep -qw nosuid'
check "-o nosuid: the setuid program runs with the caller's euid" \
	eval 'out=$(as_nobody "$MNT/id") && echo "$out" && ! grep -q "euid=" <<<"$out"'
unmount_set

# What mount(8), podman's storage.conf and fuse-overlayfs users pass must
# still mount (an unknown option is refused, see union_errors.sh).
fresh "rw,nodev,exec,noatime,defaults,x-systemd.automount,threaded=1,xino=off,userxattr" ||
	SKIP_ALL=${SKIP_ALL:-"mount failed"}
check_nl "options of mount(8), storage.conf and fuse-overlayfs are accepted" \
	"fuse-overlayfs refuses some of the kernel overlay's" \
	eval 'eq "$(cat "$MNT/rootf")" r && mount_flags "$MNT" | grep -qw nodev'
unmount_set
check_lowers_unchanged
nl_done
