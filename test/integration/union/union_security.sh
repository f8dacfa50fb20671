# SPDX-License-Identifier: GPL-2.0-or-later
# A hostile user inside a root-run mount: symlink swaps racing the daemon,
# renames racing readers, paths longer than PATH_MAX, layers that overlap.
. "$(dirname "$0")/../lib.sh"
nl_init

NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"
SECS=${NLAYERFS_RACE_SECONDS:-1.5}
command -v setpriv >/dev/null || SKIP_ALL=${SKIP_ALL:-"setpriv not installed (util-linux)"}

# The file outside every layer that the user must never reach through
# the daemon, and what it looks like.
OUT=$T/outside
mkdir -p "$OUT"
restore_outside() {
	find "$OUT" -mindepth 1 -delete
	echo secret >"$OUT/passwd"
	chown 0:0 "$OUT/passwd"
	chmod 0644 "$OUT/passwd"
	touch -d @1000000000 "$OUT/passwd"
}
restore_outside
outside_state() {
	(cd "$OUT" && ls -lA --time-style=+%s . && stat -c '%n %a %u %g %s %Y' passwd &&
		sha256sum passwd && getfattr -d -m - passwd 2>/dev/null)
}
OUT_STATE=$(outside_state)
outside_unchanged() {
	local now
	now=$(outside_state)
	[ "$now" = "$OUT_STATE" ] || { echo "the file outside the mount changed:"; diff <(echo "$OUT_STATE") <(echo "$now"); return 1; }
}

new_layers 1
mkdir -p "$D/l1/play/d"
for i in $(seq 0 99); do echo "lower $i" >"$D/l1/play/d/f$i"; done
chown -R 65534:65534 "$D/l1/play"
freeze_lowers
RACE_MNT=$MNT

# play/d: a directory with the user's own passwd; play/s: a symlink out.
reset_play() {
	$NOBODY sh -c "cd '$RACE_MNT/play' && rm -rf d s && mkdir d && echo mine >d/passwd &&
		ln -s '$OUT' s"
}

# race OP: the user swaps d and s while applying OP to d/passwd.
race() {
	local op=$1
	restore_outside
	[ "$op" = copyup ] || reset_play || return 1
	$NOBODY sh -c "cd '$RACE_MNT/play' && [ -e s ] || ln -s '$OUT' s" || return 1
	$NOBODY "$HELPERS/nl_race" "$RACE_MNT/play" "$op" "$SECS" || return 1
	outside_unchanged
}

if [ -z "$SKIP_ALL" ]; then
	nl_mount || SKIP_ALL="mount failed"
fi
# copy-up first: the lower files of play/d are still lower then
for op in copyup append chmod truncate chown utime setxattr link rename mknod; do
	check "a user racing a directory/symlink swap cannot $op outside the mount" race "$op"
done
[ -n "$SKIP_ALL" ] || nl_umount "$RACE_MNT"

# A writer replaces f by write-temp-then-rename; readers see whole versions.
torn() {
	local opts=$1
	new_layers 1
	mkdir -p "$D/l1/dir"
	nl_mount "$opts" || return 1
	"$HELPERS/nl_torn" "$MNT/dir" "$SECS" || return 1
	nl_umount "$MNT"
}
check "readers of a file renamed over see one whole version" torn ""
check "the same with timeout=0" torn timeout=0

# A tree deeper than PATH_MAX below a lower directory: each name is
# fine, so every operation works as on a local file system.
deep_ops() {
	python3 - "$1" "$2" <<'EOF'
import os, sys
mode, root = sys.argv[1], sys.argv[2]
name = "n" * 200
fd = os.open(root, os.O_RDONLY)
for i in range(24):
    if mode == "make":
        os.mkdir(name, dir_fd=fd)
    nfd = os.open(name, os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = nfd
def rd(n):
    f = os.open(n, os.O_RDONLY, dir_fd=fd)
    try:
        return os.read(f, 100)
    finally:
        os.close(f)
def wr(n, data):
    f = os.open(n, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd)
    os.write(f, data)
    os.close(f)
if mode == "make":
    wr("leaf", b"deep lower\n")
    wr("other", b"other\n")
    sys.exit(0)
assert rd("leaf") == b"deep lower\n", "read of the lower file"
assert os.stat("leaf", dir_fd=fd, follow_symlinks=False).st_size == 11
wr("new", b"new upper\n")
assert rd("new") == b"new upper\n", "new file"
os.chmod("leaf", 0o600, dir_fd=fd)
assert os.stat("leaf", dir_fd=fd).st_mode & 0o777 == 0o600, "chmod (copy-up)"
assert rd("leaf") == b"deep lower\n", "copy-up kept the data"
os.setxattr(f"/proc/self/fd/{fd}", "user.deep", b"1")
os.rename("new", "renamed", src_dir_fd=fd, dst_dir_fd=fd)
os.unlink("other", dir_fd=fd)
os.mkdir("sub", dir_fd=fd)
names = sorted(os.listdir(fd))
assert names == ["leaf", "renamed", "sub"], names
print("deep tree: every operation worked")
EOF
}
deep() {
	new_layers 1
	mkdir -p "$D/l1/top"
	deep_ops make "$D/l1/top" || return 1
	freeze_lowers
	nl_mount || return 1
	deep_ops use "$MNT/top" || return 1
	nl_umount "$MNT"
}
check "a tree deeper than PATH_MAX below a lower directory" deep

# Layers that overlap are refused, as the kernel refuses them.
refused() {
	local opts=$1 out
	mkdir -p "$MNT"
	if out=$(timeout 30 "$NLAYERFS" -o "$opts" "$MNT" 2>&1); then
		is_mounted "$MNT" && fusermount3 -u "$MNT"
		echo "mounted with $opts"
		return 1
	fi
	case $out in
	*overlap*|*inside*|*different*) ;;
	*) echo "no clear message for $opts: $out"; return 1 ;;
	esac
}
new_layers 1
mkdir -p "$D/l1/in" "$U/in"
check_nl "lowerdir equal to upperdir is refused" "the kernel says it differently" \
	refused "lowerdir=$D/l1,upperdir=$D/l1,workdir=$W"
check_nl "upperdir inside a lowerdir is refused" "the kernel says it differently" \
	refused "lowerdir=$D/l1,upperdir=$D/l1/in,workdir=$W"
check_nl "a lowerdir inside upperdir is refused" "the kernel says it differently" \
	refused "lowerdir=$U/in,upperdir=$U,workdir=$W"
check_nl "workdir inside a lowerdir is refused" "the kernel says it differently" \
	refused "lowerdir=$D/l1,upperdir=$U,workdir=$D/l1/in"
check_nl "workdir equal to upperdir is refused" "the kernel says it differently" \
	refused "lowerdir=$D/l1,upperdir=$U,workdir=$U"

check_lowers_unchanged
nl_done
