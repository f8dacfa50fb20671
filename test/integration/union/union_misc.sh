#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Union mount: xattrs, POSIX locks and flock, name and path limits,
# permission checks for another user, and the read-only mount without an
# upper layer.
. "$(dirname "$0")/../lib.sh"
nl_init

new_layers 2
L1=$D/l1 L2=$D/l2
N255=$(printf 'n%.0s' $(seq 1 255)) N256=${N255}x
if [ -z "$SKIP_ALL" ]; then
	echo x >"$L2/xf"; setfattr -n user.lower -v lv "$L2/xf"
	mkdir "$L2/xd"; setfattr -n user.d -v dv "$L2/xd"; echo i >"$L2/xd/in"
	mkdir "$L2/opq" "$L1/opq"; setfattr -n trusted.overlay.opaque -v y "$L1/opq"
	setfattr -n user.keep -v k "$L1/opq"
	echo lock >"$L2/lockf"
	mkdir -m 0700 "$L2/private"; echo secret >"$L2/private/s"
	mkdir -m 0755 "$L2/public"; echo pub >"$L2/public/p"; chmod 0644 "$L2/public/p"
	mkdir -m 0777 "$L2/shared"; mkdir -m 1777 "$L2/sticky"; echo r >"$L2/sticky/rootfile"
	echo long >"$L2/$N255"
	echo z >"$L2/zero-mode"; chmod 0000 "$L2/zero-mode"
	mkdir "$L2/sgid"; chgrp 1234 "$L2/sgid"; chmod 2775 "$L2/sgid"
	freeze_lowers
	nl_mount || SKIP_ALL="mount failed"
fi

# --- xattrs ----------------------------------------------------------------
check "getxattr of a lower file's xattr" \
	eval 'eq "$(try getxattr "$MNT/xf" user.lower | tail -n 1)" lv'
check "setxattr on a lower file, then get" \
	eval 'eq "$(try setxattr "$MNT/xf" user.new nv)" OK && eq "$(try getxattr "$MNT/xf" user.new | tail -n 1)" nv'
check "listxattr shows the old and the new names" \
	eval 'l=$(try listxattr "$MNT/xf"); grep -qx user.lower <<<"$l" && grep -qx user.new <<<"$l"'
check "removexattr, then getxattr is ENODATA" \
	eval 'eq "$(try removexattr "$MNT/xf" user.lower)" OK && eq "$(try getxattr "$MNT/xf" user.lower)" ENODATA'
check "the lower file keeps its xattr" eval 'eq "$(getfattr --only-values -n user.lower "$L2/xf")" lv'
check "removexattr of a missing name is ENODATA" expect_errno ENODATA removexattr "$MNT/xf" user.none
check "setxattr on a lower directory" \
	eval 'eq "$(try setxattr "$MNT/xd" user.d2 d2)" OK && eq "$(try getxattr "$MNT/xd" user.d | tail -n 1)" dv'
check "xattr on a new file" \
	eval 'echo n >"$MNT/nx" && eq "$(try setxattr "$MNT/nx" user.a 1)" OK && eq "$(try getxattr "$MNT/nx" user.a | tail -n 1)" 1'
check "overlay private xattrs (trusted.overlay.*) are not listed" \
	eval 'l=$(try listxattr "$MNT/opq"); grep -qx user.keep <<<"$l" && ! grep -q "^trusted.overlay\." <<<"$l"'
check "getxattr of trusted.overlay.opaque through the mount fails" \
	eval '[ "$(try getxattr "$MNT/opq" trusted.overlay.opaque | head -n 1)" != OK ]'
# The kernel may accept the call (it escapes the name on disk), but the
# directory must not become opaque by it.
check "setting trusted.overlay.opaque through the mount does not hide lower entries" \
	eval 'try setxattr "$MNT/xd" trusted.overlay.opaque y >/dev/null; echo 3 >/proc/sys/vm/drop_caches; eq "$(ls "$MNT/xd")" in'
check_impl nlayerfs "user.overlay.* and user.fuseoverlayfs.* are not listed" \
	"the kernel (without userxattr) treats them as ordinary user xattrs" \
	eval 'mkdir "$MNT/ux" && setfattr -n user.overlay.opaque -v y "$U/ux" && setfattr -n user.fuseoverlayfs.opaque -v y "$U/ux" && echo 3 >/proc/sys/vm/drop_caches && ! try listxattr "$MNT/ux" | grep -qE "^user\.(overlay|fuseoverlayfs)\."'

check "a 3000-byte xattr value round-trips" \
	eval 'v=$(printf "v%.0s" $(seq 1 3000)); eq "$(try setxattr "$MNT/nx" user.big "$v")" OK && eq "$(try getxattr "$MNT/nx" user.big | tail -n 1)" "$v" value'
check "40 xattrs are all listed" \
	eval '(for i in $(seq 1 40); do setfattr -n user.k$i -v $i "$MNT/nx" || exit 1; done) && eq "$(try listxattr "$MNT/nx" | grep -c "^user\.k")" 40 count'

# --- locks -----------------------------------------------------------------
check "fcntl F_SETLK and flock conflicts between two processes (lower file)" H nl_locks "$MNT/lockf"
check "fcntl F_SETLK and flock conflicts between two processes (new file)" \
	eval 'echo n >"$MNT/lockn" && H nl_locks "$MNT/lockn"'

# --- names and paths --------------------------------------------------------
check "a 255-byte name works (lower file read, new file created)" \
	eval 'eq "$(cat "$MNT/$N255")" long && eq "$(try open "$MNT/d$N255" wc)" ENAMETOOLONG && mkdir "$MNT/nd" && eq "$(try open "$MNT/nd/$N255" wc)" OK'
check "create with a 256-byte name is ENAMETOOLONG" expect_errno ENAMETOOLONG open "$MNT/$N256" wc
check "stat of a 256-byte name is ENAMETOOLONG" expect_errno ENAMETOOLONG stat "$MNT/$N256"
check "mkdir with a 256-byte name is ENAMETOOLONG" expect_errno ENAMETOOLONG mkdir "$MNT/$N256"
check "rename to a 256-byte name is ENAMETOOLONG" expect_errno ENAMETOOLONG rename2 none "$MNT/nx" "$MNT/$N256"
deep_path() {
	local c p=$MNT/deep
	c=$(printf 'd%.0s' $(seq 1 200))
	mkdir "$p" || return 1
	while [ $(( ${#p} + 201 + 10 )) -lt 4095 ]; do
		p=$p/$c
		eq "$(try mkdir "$p")" OK "mkdir at length ${#p}" || return 1
	done
	p=$p/$(printf 'f%.0s' $(seq 1 $((4094 - ${#p} - 1))))
	eq "${#p}" 4094 "path length" || return 1
	eq "$(try open "$p" wc)" OK "create at length ${#p}" || return 1
	eq "$(try write "$p" data)" OK "write at length ${#p}" || return 1
	eq "$(try stat "$p")" OK || return 1
	eq "$(try stat "$p/x")" ENAMETOOLONG "stat at length $((${#p} + 2))"
}
check "paths up to PATH_MAX-1 bytes work; longer ones are ENAMETOOLONG" deep_path
check "a symlink with a 4000-byte target reads back" \
	eval 't=$(printf "t%.0s" $(seq 1 4000)); ln -s "$t" "$MNT/longlink" && eq "$(readlink "$MNT/longlink")" "$t" target'
check "statfs reports a name limit of 255" eval 'eq "$(stat -f -c %l "$MNT")" 255'
deep_lower() {
	# a deep tree in a lower layer, built with relative paths
	local c i
	c=$(printf 'e%.0s' $(seq 1 250))
	(cd "$L1" && mkdir dl && cd dl && for i in $(seq 1 14); do mkdir "$c" && cd "$c" || exit 1; done && echo deep >f) || return 1
	echo 3 >/proc/sys/vm/drop_caches
	local p=$MNT/dl; for i in $(seq 1 14); do p=$p/$c; done
	eq "$(cat "$p/f")" deep "read at length ${#p}" && eq "$(try write "$p/f" x)" OK "copy-up at length ${#p}"
}
# the lower layer is changed here on purpose (before any access through
# the mount), so its fingerprint is taken again
check "a deep lower tree is readable and copied up (path length ~3.5 KiB)" deep_lower
freeze_lowers

# --- permissions as another user --------------------------------------------
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$HELPERS/nl_try" "$@"; }
check "nobody: 0700 root directory is EACCES" eval 'eq "$(as_nobody stat "$MNT/private/s")" EACCES'
check "nobody: open of a file in a 0700 root directory is EACCES" \
	eval 'eq "$(as_nobody open "$MNT/private/s" r)" EACCES'
check "nobody: reads a 0644 file in a 0755 directory" eval 'eq "$(as_nobody open "$MNT/public/p" r)" OK'
check "nobody: writing a 0644 root file is EACCES" eval 'eq "$(as_nobody open "$MNT/public/p" w)" EACCES'
check "nobody: creating in a 0755 root directory is EACCES" \
	eval 'eq "$(as_nobody open "$MNT/public/new" wc)" EACCES'
check "nobody: creates a file in a 0777 directory, owned by nobody" \
	eval 'eq "$(as_nobody open "$MNT/shared/mine" wc)" OK && eq "$(stat -c %u:%g "$MNT/shared/mine")" 65534:65534 && eq "$(stat -c %u "$U/shared/mine")" 65534'
check "nobody: sticky directory forbids deleting root's file (EPERM)" \
	eval 'eq "$(as_nobody unlink "$MNT/sticky/rootfile")" EPERM'
check "nobody: chmod of root's file is EPERM" \
	eval 'eq "$(setpriv --reuid=65534 --regid=65534 --clear-groups chmod 0666 "$MNT/public/p" 2>&1 >/dev/null | grep -c "not permitted")" 1'
check "root reads a mode 0000 lower file" eval 'eq "$(cat "$MNT/zero-mode")" z'
check "the umask applies to new files and directories" \
	eval '(umask 077 && echo u >"$MNT/um" && mkdir "$MNT/umd") && eq "$(stat -c %a "$MNT/um") $(stat -c %a "$MNT/umd")" "600 700"'
check "setgid lower directory: new entries inherit its group, subdirs keep setgid" \
	eval 'echo g >"$MNT/sgid/f" && mkdir "$MNT/sgid/d" && eq "$(stat -c %g "$MNT/sgid/f") $(stat -c "%g %A" "$MNT/sgid/d")" "1234 1234 drwxr-sr-x"'
[ -n "$SKIP_ALL" ] || nl_umount
check_lowers_unchanged

# --- read-only mount: no upperdir -----------------------------------------------
new_layers 2
if [ -z "$SKIP_ALL" ]; then
	echo ro >"$D/l2/rof"; mkdir "$D/l1/rod"; echo 1 >"$D/l1/rod/x"
	freeze_lowers
	NOUPPER=1 nl_mount || SKIP_ALL="read-only mount failed"
fi
check "without upperdir the mount is readable" eval 'eq "$(cat "$MNT/rof")$(cat "$MNT/rod/x")" ro1'
check "without upperdir: create is EROFS" expect_errno EROFS open "$MNT/new" wc
check "without upperdir: open for write is EROFS" expect_errno EROFS open "$MNT/rof" w
check "without upperdir: mkdir is EROFS" expect_errno EROFS mkdir "$MNT/nd"
check "without upperdir: unlink is EROFS" expect_errno EROFS unlink "$MNT/rof"
check "without upperdir: rename is EROFS" expect_errno EROFS rename2 none "$MNT/rof" "$MNT/rof2"
check "without upperdir: setxattr is EROFS" expect_errno EROFS setxattr "$MNT/rof" user.x y
check "without upperdir: truncate is EROFS" expect_errno EROFS truncate "$MNT/rof" 0
check "without upperdir: the mount is flagged ro in mountinfo" \
	eval 'findmnt -n -o OPTIONS "$MNT" | tr , "\n" | grep -qx ro'
[ -n "$SKIP_ALL" ] || nl_umount
check_lowers_unchanged
nl_done
