#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon's command line: bad input gets a clear message naming the
# problem, a non-zero exit, nothing mounted and nothing written (an unknown
# option too); --help, --version; mount -t fuse.nlayerfs.
# These test a command, so they run for nlayerfs (and, to check the tests
# themselves, partly for fuse-overlayfs); the kernel has no such command.
. "$(dirname "$0")/../lib.sh"
nl_init
[ "$IMPL" != kernel ] || SKIP_ALL="the kernel overlay has no daemon command line"
case $IMPL in
fuse-overlayfs) BIN=$(command -v fuse-overlayfs) ;;
*) BIN=$NLAYERFS ;;
esac

new_layers 2
echo x >"$D/l2/f" 2>/dev/null
freeze_lowers

# refuse OPTS WORD: the daemon must fail with OPTS, say WORD on stderr, and
# leave no mount and nothing in upper or work.
refuse() {
	local opts=$1 word=$2 mnt=${3:-$MNT} rc
	clean_uw
	timeout 20 "$BIN" -o "$opts" "$mnt" >"$D/out" 2>"$D/err"
	rc=$?
	if is_mounted "$mnt"; then
		MOUNTED+=("$mnt"); nl_umount "$mnt"
		echo "it mounted"; return 1
	fi
	san_clean "$D/err" || return 1
	[ $rc != 0 ] || { echo "exit status 0"; return 1; }
	[ $rc != 124 ] || { echo "timed out"; return 1; }
	grep -qiF -- "$word" "$D/err" ||
		{ echo "stderr does not name '$word':"; cat "$D/err"; return 1; }
	[ -z "$(find "$U" "$W" -mindepth 1 2>/dev/null)" ] ||
		{ echo "left in upper/work:"; find "$U" "$W" -mindepth 1; return 1; }
}
# san_clean LOG: no sanitizer report in what the daemon printed
san_clean() {
	! grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$1" ||
		{ echo "sanitizer report:"; head -30 "$1"; return 1; }
}
std="upperdir=$U,workdir=$W"
# each case starts from an empty upper and workdir
clean_uw() { rm -rf "$U" "$W" && mkdir "$U" "$W"; }
check "missing lowerdir: refused, named" refuse "lowerdir=$D/l1:$D/missing,$std" "$D/missing"
check "lowerdir that is a regular file: refused, named" refuse "lowerdir=$D/l2/f,$std" "$D/l2/f"
unreadable() {
	mkdir -p "$D/locked" && chmod 000 "$D/locked"
	clean_uw
	# root reads everything: take the override capabilities away
	timeout 20 setpriv --bounding-set -dac_override,-dac_read_search \
		"$BIN" -o "lowerdir=$D/locked,$std" "$MNT" >"$D/out" 2>"$D/err"
	local rc=$?
	if is_mounted "$MNT"; then MOUNTED+=("$MNT"); nl_umount "$MNT"; echo "it mounted"; return 1; fi
	san_clean "$D/err" || return 1
	[ $rc != 0 ] || { echo "exit status 0"; return 1; }
	grep -qF -- "$D/locked" "$D/err" || { echo "stderr does not name $D/locked:"; cat "$D/err"; return 1; }
	[ -z "$(find "$U" "$W" -mindepth 1)" ] || { echo "left in upper/work"; return 1; }
}
check "unreadable lowerdir: refused, named" unreadable
tmpfs_work() {
	mkdir -p "$D/wt" && mount -t tmpfs -o size=1m nl-T "$D/wt" || return 1
	mkdir "$D/wt/w"
	refuse "lowerdir=$D/l1,upperdir=$U,workdir=$D/wt/w" workdir || return 1
	[ -z "$(find "$D/wt/w" -mindepth 1)" ] || { echo "left in the tmpfs workdir"; return 1; }
}
check "workdir on another file system than upperdir: refused, named" tmpfs_work
check "upperdir without workdir: refused, named" refuse "lowerdir=$D/l1,upperdir=$U" workdir
check "missing mountpoint: refused, named" refuse "lowerdir=$D/l1,$std" "$D/nomnt" "$D/nomnt"
check "malformed uidmapping: refused, named" refuse "lowerdir=$D/l1,$std,uidmapping=0:x:1" uidmapping
check "malformed gidmapping: refused, named" refuse "lowerdir=$D/l1,$std,gidmapping=0:0" gidmapping
busy() {
	mkdir -p "$D/u2" "$D/w2"
	clean_uw
	impl_mount "lowerdir=$D/l1:$D/l2,upperdir=$D/u2,workdir=$D/w2" "$MNT" || return 1
	local rc=0 out
	# refuse() would take the first mount for a second one: check here
	out=$(timeout 20 "$BIN" -o "lowerdir=$D/l1:$D/l2,$std" "$MNT" 2>&1) && { echo "exit status 0"; rc=1; }
	grep -qi busy <<<"$out" || { echo "no 'busy' in: $out"; rc=1; }
	eq "$(grep -c " $MNT " /proc/self/mountinfo)" 1 "mounts on $MNT" || rc=1
	eq "$(cat "$MNT/f")" x "the first mount still works" || rc=1
	while is_mounted "$MNT"; do nl_umount "$MNT" || break; done
	return $rc
}
# fuse-overlayfs stacks a second mount on the first one
if nl_only || [ -n "$SKIP_ALL" ]; then
	check "busy mountpoint (already mounted): refused, first mount untouched" busy
else
	skip "busy mountpoint (already mounted): refused, first mount untouched" "nlayerfs-only: $IMPL mounts over"
fi

# fuse-overlayfs only warns; a misspelt upperdir= then gives a read-only
# mount that looks as if it worked
check_nl "unknown option (misspelt upperdir=): refused by name, nothing mounted" \
	"fuse-overlayfs warns and mounts" \
	refuse "lowerdir=$D/l1:$D/l2,uperdir=$U,workdir=$W" "unknown option 'uperdir="
check "--help exits 0 and prints usage" \
	eval '"$BIN" --help >"$D/out" 2>&1 && grep -qi lowerdir "$D/out"'
check "--version exits 0 and prints a version" \
	eval '"$BIN" --version >"$D/out" 2>&1 && grep -qE "[0-9]+\.[0-9]+" "$D/out"'
# mount(8) runs its helpers with a fixed PATH, so the binary is made
# reachable as /usr/local/sbin/NAME by a bind mount inside a private mount
# namespace; the whole check runs there and nothing outside sees it.
mount_t() {
	local name=nlayerfs
	[ "$IMPL" != fuse-overlayfs ] || name=fuse-overlayfs
	mkdir -p "$D/bin" && cp "$BIN" "$D/bin/$name" || return 1
	clean_uw
	unshare -m --propagation private bash -c '
		set -u
		. "$1"; D=$2 U=$3 MNT=$4 name=$5 lowers=$6 std=$7
		mount --bind "$D/bin" /usr/local/sbin || exit 1
		cd / && timeout 20 mount -t "fuse.$name" "$name" "$MNT" -o "lowerdir=$lowers,$std" || exit 1
		rc=0
		eq "$(fs_type_of "$MNT")" "fuse.$name" "type in mountinfo" || rc=1
		eq "$(cat "$MNT/f")" x "content" || rc=1
		echo w >"$MNT/w" && [ -f "$U/w" ] || { echo "write did not reach upper"; rc=1; }
		fusermount3 -u "$MNT" || umount -l "$MNT"
		exit $rc' mount_t "$SRC/test/integration/lib.sh" "$D" "$U" "$MNT" "$name" "$D/l1:$D/l2" "$std"
}
check "mount -t fuse.nlayerfs with the binary on PATH works" mount_t
check "nothing is left mounted" eval '! is_mounted "$MNT"'

# A copy-up that does not fit the upper file system: ENOSPC, as a local
# write would say, and no half copy left behind in work/.
full_upper() {
	local rc=0 tmp
	new_layers 1
	mkdir -p "$D/uw"
	mount -t tmpfs -o size=4m tmpfs "$D/uw" || return 1
	mkdir -p "$D/uw/u" "$D/uw/w"
	U=$D/uw/u W=$D/uw/w
	head -c 8M /dev/urandom >"$D/l1/big"
	echo small >"$D/l1/small"
	freeze_lowers
	nl_mount || return 1
	expect_errno ENOSPC write "$MNT/big" more || rc=1
	tmp=$(find "$W/work" -mindepth 1 | head -3)
	[ -z "$tmp" ] || { echo "left in work/: $tmp"; rc=1; }
	[ "$(df --output=used -B1 "$D/uw" | tail -1)" -lt $((1024 * 1024)) ] ||
		{ echo "upper still full after the failed copy-up"; rc=1; }
	expect_errno OK write "$MNT/small" more || rc=1
	cmp -s "$D/l1/big" "$MNT/big" || { echo "big no longer reads its lower bytes"; rc=1; }
	nl_umount "$MNT"
	return $rc
}
check "a copy-up on a full upper file system fails with ENOSPC and leaves nothing in work/" full_upper
check_lowers_unchanged
nl_done
