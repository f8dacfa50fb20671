#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Union mount, read side: lookup through layers, whiteouts, opaque
# directories and the merged readdir.
. "$(dirname "$0")/../lib.sh"
nl_init

# Three lower layers; l1 is topmost.
new_layers 3
L1=$D/l1 L2=$D/l2 L3=$D/l3
if [ -z "$SKIP_ALL" ]; then
	echo bottom >"$L3/f"; echo middle >"$L2/f"; echo top >"$L1/f"
	echo only3 >"$L3/only3"; echo only2 >"$L2/only2"
	mkdir -p "$L3/d/sub" "$L2/d" "$L1/d"
	echo a >"$L3/d/a"; echo b >"$L2/d/b"; echo c >"$L1/d/c"; echo s >"$L3/d/sub/s"
	echo a2 >"$L2/d/a"     # d/a exists twice: l2 must win
	# a file above hides a directory below
	mkdir -p "$L3/fd"; echo hidden >"$L3/fd/inner"; echo file >"$L2/fd"
	# and a directory above hides a file below
	echo file >"$L3/df"; mkdir "$L2/df"; echo in >"$L2/df/x"
	# whiteouts: char 0/0 and the .wh. name form
	echo gone >"$L3/wc"; mknod "$L2/wc" c 0 0
	echo gone >"$L3/wn"; touch "$L2/.wh.wn"
	mkdir -p "$L3/wdir"; echo x >"$L3/wdir/x"; mknod "$L1/wdir" c 0 0
	echo gone >"$L3/d/wa"; mknod "$L1/d/wa" c 0 0
	# opaque directories, one per marker form
	for k in tov uov ufo opq; do
		mkdir -p "$L3/$k" "$L2/$k"
		echo hidden >"$L3/$k/below"; echo seen >"$L2/$k/above"
	done
	setfattr -n trusted.overlay.opaque -v y "$L2/tov"
	setfattr -n user.overlay.opaque -v y "$L2/uov"
	setfattr -n user.fuseoverlayfs.opaque -v y "$L2/ufo"
	touch "$L2/opq/.wh..wh..opq"
	# an empty directory and names that sort around each other
	mkdir "$L3/empty"
	for i in $(seq 1 40); do echo $i >"$D/l$((i % 3 + 1))/many$i"; done
	mkdir -p "$L1/many"; mkdir -p "$L2/many" "$L3/many"
	for i in $(seq 1 300); do touch "$D/l$((i % 3 + 1))/many/n$i"; done
	touch "$L1/many/n1" "$L2/many/n2"   # duplicates over layers
	freeze_lowers
	nl_mount || SKIP_ALL="mount failed"
fi

check "mount is usable right after the mount command returns" \
	eval '[ -d "$MNT/d" ] && [ "$(cat "$MNT/f")" = top ]'
check "topmost layer wins for a file in three layers" eval 'eq "$(cat "$MNT/f")" top'
check "a file of a single lower layer is found (l2, l3)" \
	eval 'eq "$(cat "$MNT/only2")$(cat "$MNT/only3")" only2only3'
check "directory merges entries of all layers" \
	eval 'eq "$(ls "$MNT/d" | tr "\n" " ")" "a b c sub "'
check "entry present in two layers comes from the upper one" eval 'eq "$(cat "$MNT/d/a")" a2'
check "subdirectory of a lower layer is reachable" eval 'eq "$(cat "$MNT/d/sub/s")" s'
check "a file hides a directory of the same name below" \
	eval '[ -f "$MNT/fd" ] && eq "$(cat "$MNT/fd")" file && expect_errno ENOTDIR stat "$MNT/fd/inner"'
check "a directory hides a file of the same name below" \
	eval '[ -d "$MNT/df" ] && eq "$(ls "$MNT/df")" x'
check "char 0/0 whiteout hides the file below" expect_errno ENOENT lstat "$MNT/wc"
check "char 0/0 whiteout hides a directory below" expect_errno ENOENT lstat "$MNT/wdir"
check "whiteout inside a merged directory hides the entry" expect_errno ENOENT lstat "$MNT/d/wa"
check_impl "nlayerfs fuse-overlayfs" ".wh.NAME whiteout hides the file below" \
	"the kernel reads only char 0/0 whiteouts" expect_errno ENOENT lstat "$MNT/wn"
check "trusted.overlay.opaque=y hides lower entries" \
	eval 'eq "$(ls "$MNT/tov")" above'
check_impl "nlayerfs fuse-overlayfs" "user.overlay.opaque=y hides lower entries" \
	"the kernel reads user.overlay.* only with userxattr" eval 'eq "$(ls "$MNT/uov")" above'
check_impl "nlayerfs fuse-overlayfs" "user.fuseoverlayfs.opaque=y hides lower entries" \
	"a fuse-overlayfs marker" eval 'eq "$(ls "$MNT/ufo")" above'
check_impl "nlayerfs fuse-overlayfs" ".wh..wh..opq marks a directory opaque" \
	"the kernel does not read .wh..wh..opq" eval 'eq "$(ls -A "$MNT/opq")" above'

no_dupes() { local d; d=$(ls -A "$1" | sort | uniq -d); [ -z "$d" ] || { echo "duplicates: $d"; return 1; }; }
no_markers() {
	local m
	m=$(ls -A "$1" | grep -E '^\.wh\.|^(wc|wn|wdir)$')
	[ -z "$m" ] || { echo "whiteouts listed: $m"; return 1; }
}
check "merged readdir lists each name once (top level)" no_dupes "$MNT"
check "merged readdir of a 300-entry three-layer dir: all names, once" \
	eval 'no_dupes "$MNT/many" && eq "$(ls -A "$MNT/many" | wc -l)" 300 count'
check "readdir shows no whiteouts" eval 'no_markers "$MNT"; [ -z "$(ls -A "$MNT/d" | grep -x wa)" ]'
check_impl "nlayerfs fuse-overlayfs" "readdir shows no .wh.* names" \
	"the kernel lists .wh. files as plain files" \
	eval '[ -z "$(find "$MNT" -name ".wh.*")" ]'
check "readdir has . and .." eval 'ls -a "$MNT/d" | grep -qx . && ls -a "$MNT/d" | grep -qx ..'
check "empty lower directory lists empty" eval 'eq "$(ls -A "$MNT/empty")" ""'
check "find walks the merged tree without errors" eval 'find "$MNT" >/dev/null'
check "stat reports the size of the topmost file" eval 'eq "$(stat -c %s "$MNT/f")" 4'
check "a missing name is ENOENT" expect_errno ENOENT stat "$MNT/nope"
check "readdir d_ino equals st_ino in a merged directory" H nl_dino "$MNT/d"
check "readdir d_ino equals st_ino at the root" H nl_dino "$MNT"
check "readdir d_ino equals st_ino in a big merged directory" H nl_dino "$MNT/many"
check "st_ino of a file is stable across lookups" \
	eval 'a=$(stat -c %i "$MNT/d/b"); ls -R "$MNT" >/dev/null; echo 3 >/proc/sys/vm/drop_caches; eq "$(stat -c %i "$MNT/d/b")" "$a"'

check "reads, stats, readdir, getxattr and open O_RDONLY copy nothing up" \
	eval 'getfattr -R -d "$MNT" >/dev/null 2>&1; cat "$MNT/d/a" "$MNT/only3" >/dev/null; eq "$(find "$U" -mindepth 1)" "" "upper content"'
[ -n "$SKIP_ALL" ] || nl_umount
check "nothing is left mounted after unmount" eval '! is_mounted "$MNT"'
check_lowers_unchanged
nl_done
