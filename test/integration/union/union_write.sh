#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Union mount, write side: copy-up, creation of every file type, deletion
# with whiteouts and opaque directories, truncate, fallocate,
# copy_file_range, fsync, statfs, unlinked-but-open files.
. "$(dirname "$0")/../lib.sh"
nl_init

new_layers 2
L1=$D/l1 L2=$D/l2
if [ -z "$SKIP_ALL" ]; then
	printf 'lower data\n' >"$L2/cu"; chown 1234:5678 "$L2/cu"; chmod 0640 "$L2/cu"
	setfattr -n user.color -v blue "$L2/cu"; setfattr -n trusted.nlt -v t1 "$L2/cu"
	touch -d '2001-02-03 04:05:06.5' "$L2/cu"
	truncate -s 64M "$L2/sparse"; printf 'head' | dd of="$L2/sparse" conv=notrunc status=none
	printf 'tail' | dd of="$L2/sparse" bs=1 seek=$((40 * 1024 * 1024)) conv=notrunc status=none
	for f in app trunc otrunc falloc cfr del unl unl3 fsy rofd rofd2 rounl; do seq 1 2000 >"$L2/$f"; done
	mkdir -p "$L2/dd/sub" "$L1/dd"; echo 1 >"$L2/dd/x"; echo 2 >"$L1/dd/y"; echo 3 >"$L2/dd/sub/z"
	mkdir -p "$L2/rd"; echo 1 >"$L2/rd/a"; echo 2 >"$L2/rd/b"
	mkdir -p "$L2/emptyd" "$L2/redo"; echo old >"$L2/redo/old"
	mkdir -p "$L2/deep/a/b"; echo 1 >"$L2/deep/a/b/f"
	mkdir -p "$L2/cud"; echo e >"$L2/cud/e"; chown 77:88 "$L2/cud"; chmod 0751 "$L2/cud"
	setfattr -n user.dir -v dx "$L2/cud"; touch -d '2002-03-04 05:06:07' "$L2/cud"
	freeze_lowers
	nl_mount || SKIP_ALL="mount failed"
fi

# --- copy-up -------------------------------------------------------------
copyup_meta() {
	eq "$(try open "$MNT/cu" w)" OK open || return 1
	[ -f "$U/cu" ] || { echo "open for writing did not copy up"; return 1; }
	eq "$(stat -c '%a %u:%g %s %y' "$U/cu")" "$(stat -c '%a %u:%g %s %y' "$L2/cu")" "upper mode owner size mtime"
	cmp "$U/cu" "$L2/cu"
}
check "copy-up on open for write keeps data, mode, owner and mtime" copyup_meta
check "stat through the mount shows the same mode/owner/mtime after copy-up" \
	eval 'eq "$(stat -c "%a %u:%g %y" "$MNT/cu")" "$(stat -c "%a %u:%g %y" "$L2/cu")"'
check "copy-up keeps user.* xattrs" eval 'eq "$(getfattr --only-values -n user.color "$U/cu")" blue'
check "copy-up keeps trusted.* xattrs" eval 'eq "$(getfattr --only-values -n trusted.nlt "$U/cu")" t1'
check "append to a lower file: old data + new data" \
	eval 'echo more >>"$MNT/app" && eq "$(tail -n 2 "$MNT/app" | tr "\n" " ")" "2000 more " && eq "$(wc -l <"$MNT/app")" 2001'
sparse_copyup() {
	chmod 0600 "$MNT/sparse" || return 1
	echo x >>"$MNT/sparse" || return 1
	local b; b=$(stat -c %b "$U/sparse")
	# the kernel skips holes in 1 MiB steps: allow a few MiB, not 64
	[ "$b" -lt 16384 ] || { echo "upper copy uses $b blocks of 512 bytes for 8 KiB of data"; return 1; }
	eq "$(head -c 4 "$MNT/sparse")" head &&
		eq "$(dd if="$MNT/sparse" bs=1 skip=$((40 * 1024 * 1024)) count=4 status=none)" tail
}
check "copy-up of a sparse 64 MiB file stays sparse (st_blocks) and keeps data" sparse_copyup
check "chmod of a lower file copies up only that file's mode change" \
	eval 'chmod 0751 "$MNT/fsy" && eq "$(stat -c %a "$MNT/fsy")" 751 && eq "$(stat -c %a "$L2/fsy")" 644'
check "chown of a lower file" eval 'chown 42:43 "$MNT/fsy" && eq "$(stat -c %u:%g "$MNT/fsy")" 42:43'
check "touch -d sets mtime on a lower file" \
	eval 'touch -d "1999-09-09 09:09:09" "$MNT/fsy" && eq "$(stat -c %Y "$MNT/fsy")" "$(date -d "1999-09-09 09:09:09" +%s)"'
check "copy-up of a file in a lower-only subdirectory creates the parents" \
	eval 'echo 2 >>"$MNT/deep/a/b/f" && [ -f "$U/deep/a/b/f" ] && eq "$(cat "$MNT/deep/a/b/f" | tr "\n" .)" 1.2.'
dir_copyup() {
	local want
	want=$(stat -c '%a %u:%g' "$L2/cud")
	echo n >"$MNT/cud/new" || return 1
	[ -d "$U/cud" ] || { echo "no upper copy of the directory"; return 1; }
	eq "$(stat -c '%a %u:%g' "$U/cud")" "$want" "upper dir mode/owner" || return 1
	eq "$(getfattr --only-values -n user.dir "$U/cud")" dx "upper dir xattr" || return 1
	eq "$(ls "$MNT/cud" | tr "\n" " ")" "e new " "listing"
}
check "copy-up of a directory keeps mode, owner, xattrs and lower entries" dir_copyup
check "workdir holds no leftovers after copy-ups" \
	eval '[ -z "$(find "$W" -mindepth 2 -not -type d)" ]'

# A descriptor opened read-only before the copy-up must see the file as it
# is now (the kernel and fuse-overlayfs both do), not the stale lower copy.
ro_fd_after_copyup() {
	local got
	exec 3<"$MNT/rofd" || return 1
	echo appended >>"$MNT/rofd"
	# read from the daemon, not from the page cache
	echo 1 >/proc/sys/vm/drop_caches
	got=$(tail -n 1 <&3)
	exec 3<&-
	eq "$got" appended "last line read through the old read-only descriptor" || return 1
	# the same for an overwrite of bytes the old descriptor reads next
	exec 3<"$MNT/rofd2" || return 1
	printf XXXX | dd of="$MNT/rofd2" bs=1 conv=notrunc status=none
	echo 1 >/proc/sys/vm/drop_caches
	got=$(dd bs=4 count=1 status=none <&3)
	exec 3<&-
	eq "$got" XXXX "first bytes read through the old read-only descriptor"
}
check "a read-only fd opened before copy-up reads the data written after it" ro_fd_after_copyup
ro_fd_unlinked() {
	local got
	exec 3<"$MNT/rounl" || return 1
	rm "$MNT/rounl" || return 1
	got=$(wc -l <&3)
	exec 3<&-
	eq "$got" 2000 "lines read after unlink"
}
check "a read-only fd of a lower file still reads after unlink" ro_fd_unlinked

# --- truncate, fallocate, copy_file_range, fsync, statfs ------------------
check "truncate(2) of a lower file" \
	eval 'eq "$(try truncate "$MNT/trunc" 10)" OK && eq "$(stat -c %s "$MNT/trunc")" 10 && eq "$(head -c 10 "$L2/trunc" | cmp - "$MNT/trunc" && echo same)" same'
check "O_TRUNC of a lower file" \
	eval 'eq "$(try open "$MNT/otrunc" wt)" OK && eq "$(stat -c %s "$MNT/otrunc")" 0 && [ -s "$L2/otrunc" ]'
check "truncate to grow reads zeros" \
	eval 'truncate -s 20000 "$MNT/trunc" && eq "$(tail -c 100 "$MNT/trunc" | tr -d "\0" | wc -c)" 0'
check "fallocate: grow, KEEP_SIZE, punch hole (lower file)" H nl_falloc "$MNT/falloc"
check "copy_file_range from a lower file into a new file" \
	H nl_copyrange "$MNT/cfr" "$MNT/cfr.copy" 100 5000 0
check "copy_file_range into the middle of an existing file" \
	H nl_copyrange "$MNT/cfr" "$MNT/app" 0 3000 1000
check "fsync and fdatasync of a lower and of a new file" \
	eval 'eq "$(try fsync "$MNT/fsy")$(try fdatasync "$MNT/cfr.copy")" OKOK'
check "statfs of the mount" eval 'eq "$(try statfs "$MNT")" OK && [ "$(stat -f -c %b "$MNT")" -gt 0 ]'

# --- creation --------------------------------------------------------------
check "create a file" eval 'echo new >"$MNT/nf" && eq "$(cat "$MNT/nf")" new && [ -f "$U/nf" ]'
check "O_CREAT|O_EXCL on an existing lower file is EEXIST" expect_errno EEXIST open "$MNT/cfr" wcx
check "mkdir" eval 'mkdir "$MNT/nd" && [ -d "$MNT/nd" ] && [ -d "$U/nd" ]'
check "mkdir over a lower directory is EEXIST" expect_errno EEXIST mkdir "$MNT/dd"
check "mknod (char device 1/3)" eval 'mknod "$MNT/nnull" c 1 3 && eq "$(stat -c "%F %t:%T" "$MNT/nnull")" "character special file 1:3"'
check "mkfifo" eval 'mkfifo "$MNT/nfifo" && eq "$(stat -c %F "$MNT/nfifo")" fifo'
check "symlink and readlink" eval 'ln -s ../some/target "$MNT/nsym" && eq "$(readlink "$MNT/nsym")" ../some/target'
check "hard link to a new file" \
	eval 'ln "$MNT/nf" "$MNT/nf2" && eq "$(stat -c %h "$MNT/nf")" 2 && eq "$(stat -c %i "$MNT/nf")" "$(stat -c %i "$MNT/nf2")"'
check "new file in a lower-only directory" eval 'echo n >"$MNT/rd/c" && eq "$(ls "$MNT/rd" | tr "\n" " ")" "a b c "'

# --- deletion --------------------------------------------------------------
is_whiteout() { [ "$(stat -c '%F %t:%T' "$1" 2>&1)" = "character special file 0:0" ] || { echo "$1: $(stat -c '%F %t:%T' "$1" 2>&1), want a char 0/0 whiteout"; return 1; }; }
check "unlink of a lower file hides it" eval 'rm "$MNT/del" && expect_errno ENOENT stat "$MNT/del"'
check "unlink of a lower file writes a char 0/0 whiteout in upper" is_whiteout "$U/del"
check "a deleted lower file is not listed" eval '! ls "$MNT" | grep -qx del'
check "unlink of an upper-only file leaves no whiteout" \
	eval 'rm "$MNT/nf2" && expect_errno ENOENT lstat "$U/nf2"'
check "unlink of a missing name is ENOENT" expect_errno ENOENT unlink "$MNT/nothere"
check "rmdir of a directory with lower entries is ENOTEMPTY" expect_errno ENOTEMPTY rmdir "$MNT/rd"
check "rmdir of a non-empty merged directory is ENOTEMPTY" expect_errno ENOTEMPTY rmdir "$MNT/dd"
check "unlink of a directory is EISDIR" expect_errno EISDIR unlink "$MNT/dd"
check "rmdir of a file is ENOTDIR" expect_errno ENOTDIR rmdir "$MNT/cfr"
rm_all_rd() { rm "$MNT/rd/a" "$MNT/rd/b" "$MNT/rd/c" && eq "$(ls -A "$MNT/rd")" "" && eq "$(try rmdir "$MNT/rd")" OK; }
check "a directory whose lower entries are all deleted can be removed" rm_all_rd
check "rmdir of a lower directory writes a whiteout" is_whiteout "$U/rd"
check "rmdir of an empty lower directory" eval 'rmdir "$MNT/emptyd" && expect_errno ENOENT stat "$MNT/emptyd" && is_whiteout "$U/emptyd"'
check "rm -rf of a merged tree" eval 'rm -rf "$MNT/dd" && expect_errno ENOENT stat "$MNT/dd" && [ -d "$L2/dd/sub" ]'
recreate() {
	rm -rf "$MNT/redo" && mkdir "$MNT/redo" || return 1
	eq "$(ls -A "$MNT/redo")" "" "listing of the recreated dir" || return 1
	eq "$(getfattr --only-values -n trusted.overlay.opaque "$U/redo" 2>/dev/null)" y "trusted.overlay.opaque of upper/redo"
}
check "a recreated directory is empty and opaque (trusted.overlay.opaque=y)" recreate
check "a file created where a lower file was deleted" \
	eval 'echo again >"$MNT/del" && eq "$(cat "$MNT/del")" again && [ -f "$U/del" ]'
check "no .wh.* marker files are left in upper" eval '[ -z "$(find "$U" -name ".wh.*")" ]'

# A layer unpacked through the mount, as containerd's snapshotter does.
unpack() {
	mkdir -p "$T/tarsrc/deep/a/b" "$T/tarsrc/newdir" || return 1
	echo replaced >"$T/tarsrc/deep/a/b/f"; echo nn >"$T/tarsrc/newdir/n"; ln -s newdir/n "$T/tarsrc/ln"
	tar -C "$T/tarsrc" -cf "$T/layer.tar" . && tar -C "$MNT" -xpf "$T/layer.tar" || return 1
	eq "$(cat "$MNT/deep/a/b/f")$(cat "$MNT/newdir/n")$(cat "$MNT/ln")" replacednnnn
}
check "tar unpacks a layer through the mount over lower content" unpack

# --- unlinked but open -----------------------------------------------------
check "unlinked-open lower file: read, write, fstat st_nlink 0" H nl_unlinked "$MNT/unl"
check "unlinked-open upper file: read, write, fstat st_nlink 0" \
	eval 'seq 1 10 >"$MNT/unl2" && H nl_unlinked "$MNT/unl2"'
# Opened on the lower layer, then copied up by a chmod, then unlinked:
# fstat answers for the copy (mode 0600), not for the lower file.
fstat_after_copy_up() {
	python3 - "$MNT/unl3" <<'PY'
import os, sys
p = sys.argv[1]
fd = os.open(p, os.O_RDONLY)
os.chmod(p, 0o600)
os.unlink(p)
st = os.fstat(fd)
print(f"mode {st.st_mode & 0o7777:o}, nlink {st.st_nlink}")
sys.exit(st.st_mode & 0o7777 != 0o600 or st.st_nlink != 0 or os.read(fd, 4) != b"1\n2\n")
PY
}
check "opened lower, copied up, unlinked: fstat shows the copy, st_nlink 0" fstat_after_copy_up

dino_all() { local d rc=0; while read -r d; do H nl_dino "$d" || rc=1; done < <(find "$MNT" -type d); return $rc; }
check "readdir d_ino equals st_ino in every directory after the changes" dino_all
[ -n "$SKIP_ALL" ] || nl_umount
check_lowers_unchanged
nl_done
