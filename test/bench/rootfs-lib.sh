# SPDX-License-Identifier: GPL-2.0-or-later
# Shell functions for building layered Debian roots for the benchmarks;
# sourced by test/bench/coldstart-rootfs.sh and jre-rootfs.sh. The caller sets:
#   dest     the layers directory (l0, l1, ...)
#   scratch  a scratch directory (work dirs, the overlay mount point)
#   tag      the name in messages
# and calls rootfs_traps once, before the first step.

rootfs_mnt() { echo "$scratch/merged"; }

# Unmounts whatever a step left mounted and removes the scratch directory.
rootfs_cleanup() {
	local m mnt
	mnt=$(rootfs_mnt)
	for m in "$mnt/dev" "$mnt/proc" "$mnt"; do
		mountpoint -q "$m" 2>/dev/null && umount "$m"
	done
	rm -rf "$scratch"
}

rootfs_traps() {
	trap rootfs_cleanup EXIT
	trap 'exit 130' INT TERM HUP
}

# rootfs_base [REUSE]: l0 = debootstrap --variant=minbase bookworm, or a
# copy of REUSE/l0 when REUSE/stamp says that tree is complete (REUSE's
# l0 must be the same minbase bookworm).
rootfs_base() {
	local reuse=${1:-} mirror=${NL_DEBIAN_MIRROR:-http://deb.debian.org/debian}
	if [ -n "$reuse" ] && [ -f "$reuse/stamp" ] && [ -d "$reuse/l0" ] &&
		grep -q '^nl-coldstart layers .*minbase bookworm' "$reuse/stamp"; then
		echo "$tag: l0 base (a copy of $reuse/l0, minbase bookworm)"
		cp -a "$reuse/l0" "$dest/l0"
		return
	fi
	command -v debootstrap >/dev/null ||
		{ echo "$tag: debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }
	echo "$tag: l0 base (debootstrap minbase bookworm from $mirror)"
	debootstrap --variant=minbase bookworm "$dest/l0" "$mirror" >"$dest.debootstrap.log" 2>&1 ||
		{ echo "$tag: debootstrap failed, see $dest.debootstrap.log" >&2; exit 1; }
}

# rootfs_layer K CMD: runs CMD in a chroot of l0..l(K-1) with lK as the
# upper dir of a kernel overlay mount, so lK holds exactly the diff,
# whiteouts and opaque directories included.
rootfs_layer() {
	local k=$1 lower="" j mnt
	shift
	mnt=$(rootfs_mnt)
	for ((j = k - 1; j >= 0; j--)); do lower="$lower${lower:+:}$dest/l$j"; done
	mkdir -p "$dest/l$k" "$scratch/work$k" "$mnt"
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dest/l$k,workdir=$scratch/work$k" "$mnt"
	mount -t proc proc "$mnt/proc"
	mount --bind /dev "$mnt/dev"
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C \
		chroot "$mnt" /bin/sh -ec "$*"
	umount "$mnt/dev" "$mnt/proc" "$mnt"
	rm -rf "$scratch/work$k"
}

# The kernel marks its upper dirs with origin, impure and uuid attributes
# that mean nothing in a lower layer; images carry only whiteouts and opaque.
rootfs_strip_xattrs() {
	local f a
	find "$dest" -path "$dest/l0" -prune -o -print0 |
		while IFS= read -r -d '' f; do
			for a in trusted.overlay.origin trusted.overlay.impure trusted.overlay.uuid; do
				setfattr -h -x "$a" "$f" 2>/dev/null || true
			done
		done
}

# rootfs_sizes N: one line per layer l0..lN.
rootfs_sizes() {
	local k
	for ((k = 0; k <= $1; k++)); do
		echo "$tag: l$k $(du -sm "$dest/l$k" | cut -f1) MiB, $(find "$dest/l$k" | wc -l) entries"
	done
}
