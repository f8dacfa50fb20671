#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# On-disk compatibility with the in-kernel overlayfs. A scripted series of
# changes goes through a mount of the implementation under test; then the
# kernel overlay mounts the same lowers with a copy of that upper dir and
# must show the same tree. And the reverse: an upper written by the kernel,
# mounted by the implementation under test, shows the same tree.
. "$(dirname "$0")/../lib.sh"
nl_init
if [ -z "$SKIP_ALL" ] && ! grep -qw overlay /proc/filesystems; then
	SKIP_ALL="no in-kernel overlayfs to compare with"
fi

# make_lowers DIR: the two lower layers both directions start from
make_lowers() {
	local l1=$1/l1 l2=$1/l2
	mkdir -p "$l1" "$l2"
	echo a >"$l2/a"; echo b >"$l2/b"; echo c >"$l2/c"; echo v >"$l2/victim"
	seq 1 1000 >"$l2/big"; echo t >"$l2/trunc"; echo m >"$l2/mode"; echo x >"$l2/xa"
	mkdir -p "$l2/d1/n1/n2" "$l2/redo" "$l2/merged" "$l1/merged" "$l2/ld/in"
	echo 1 >"$l2/d1/f"; echo 2 >"$l2/d1/n1/n2/g"; echo old >"$l2/redo/old"
	echo lo >"$l2/merged/lo"; echo hi >"$l1/merged/hi"; echo gone >"$l2/merged/gone"
	echo in >"$l2/ld/in/f"; echo top >"$l2/ld/top"
	ln -s a "$l2/sl"; ln -s /nowhere "$l1/dangling"
	echo f >"$l2/ftod"; mkdir -p "$l2/dtof/x"; echo y >"$l2/dtof/x/y"
	setfattr -n user.keep -v k1 "$l2/c"
	echo over >"$l1/b"
}

# changes: the scripted series, run inside a mount. $1 = 1 adds the rename
# of a directory with lower content (the kernel returns EXDEV for it).
changes() {
	local dirmove=$1
	set -e
	rm a
	rm -r d1
	rm -r redo; mkdir redo; echo new >redo/new
	mv b b2
	mv c victim
	echo more >>big
	chmod 0600 mode
	setfattr -n user.tag -v v1 xa
	truncate -s 1 trunc
	ln -s b2 newlink
	mkdir -p nd/sub; echo n >nd/sub/n; mkfifo nd/fifo
	rm merged/gone; echo new >merged/new; echo hi2 >>merged/hi
	ln nd/sub/n nd/hard
	rm sl; echo notalink >sl
	rm dangling
	rm ftod; mkdir ftod; echo in >ftod/in
	rm -r dtof; echo nowfile >dtof
	setfattr -n user.more -v m1 victim
	if [ "$dirmove" = 1 ]; then mv ld ld.moved; echo w >ld.moved/in/w; fi
	set +e
}

# tree: everything the mount shows that both sides must agree on
tree() {
	(cd "$1" && find . -mindepth 1 -printf '%p %y %m %U:%G %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0r sha256sum &&
		getfattr -R -h -d -m '^user\.' . 2>/dev/null)
}

same_tree() {
	if ! diff "$1" "$2" >"$T/diff"; then
		echo "trees differ ($1 vs $2):"; head -40 "$T/diff"; return 1
	fi
}

# run_side IMPL DIR DIRMOVE: lowers, mount with IMPL, changes, tree dump
# into DIR/tree, unmount.
run_side() {
	local impl=$1 d=$2 mv=$3
	mkdir -p "$d/u" "$d/w" "$d/m"
	impl_mount "lowerdir=$d/l1:$d/l2,upperdir=$d/u,workdir=$d/w" "$d/m" "$impl" || return 1
	(cd "$d/m" && changes "$mv") || { echo "the changes failed on $impl"; nl_umount "$d/m"; return 1; }
	echo 3 >/proc/sys/vm/drop_caches
	tree "$d/m" >"$d/tree"
	nl_umount "$d/m"
}

# read_side IMPL DIR [OUT]: mount DIR's lowers with a copy of DIR/u, dump
# the tree into DIR/OUT (default tree2).
read_side() {
	local impl=$1 d=$2 out=${3:-tree2}
	rm -rf "$d/u2" "$d/w2" && mkdir -p "$d/w2" "$d/m2"
	cp -a "$d/u" "$d/u2" || return 1
	impl_mount "lowerdir=$d/l1:$d/l2,upperdir=$d/u2,workdir=$d/w2" "$d/m2" "$impl" || return 1
	tree "$d/m2" >"$d/$out"
	nl_umount "$d/m2"
}

A=$T/a B=$T/b
if [ -z "$SKIP_ALL" ]; then
	make_lowers "$A"; make_lowers "$B"
	LOWERS=$A/l1:$A/l2:$B/l1:$B/l2
	freeze_lowers
fi
# the directory rename joins in only where nlayerfs writes the upper
DM=0
nl_only && DM=1
check "scripted changes through the $IMPL mount" run_side "$IMPL" "$A" "$DM"
check "the kernel overlay mounts the upper written by $IMPL" read_side kernel "$A"
check "the kernel shows the same tree as the $IMPL mount did" same_tree "$A/tree" "$A/tree2"
check "$IMPL mounts its own upper again" read_side "$IMPL" "$A" tree3
check "$IMPL shows the same tree after a remount" same_tree "$A/tree" "$A/tree3"
check "no marker file in upper that the kernel would show as a regular file" \
	eval '[ -z "$(find "$A/u" -name ".wh.*")" ]'
check "the same changes through a kernel overlay mount" run_side kernel "$B" 0
check "$IMPL mounts the upper written by the kernel" read_side "$IMPL" "$B"
check "$IMPL shows the same tree as the kernel mount did" same_tree "$B/tree" "$B/tree2"
same_result() {
	if [ "$DM" = 1 ]; then
		# drop what only the nlayerfs side did
		grep -v 'ld' "$A/tree" >"$T/ta"; grep -v 'ld' "$B/tree" >"$T/tb"
		same_tree "$T/ta" "$T/tb"
	else
		same_tree "$A/tree" "$B/tree"
	fi
}
check "the same changes give the same tree on $IMPL and on the kernel" same_result
check_lowers_unchanged
nl_done
