#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# podman with nlayerfs as the overlay driver's mount_program, in a private
# storage root: build an image from a static busybox (no registry, no
# network), run a container that reads, writes, deletes lower files and
# renames a lower directory, commit it, save it as an OCI archive, and
# compare the committed image, imported with nlayerfs-import and mounted
# with -o image=NAME, with the tree the same changes give on a plain copy.
#
# NLAYERFS_PODMAN_PROGRAM replaces the mount program (to check that a broken
# one makes this test fail).
. "$(dirname "$0")/../lib.sh"
nl_init
IMPORT=$NLBUILD/nlayerfs-import
case $IMPL in
kernel) SKIP_ALL=${SKIP_ALL:-"podman's mount_program is a FUSE daemon; the kernel overlay has none"} ;;
fuse-overlayfs) PROG=$(command -v fuse-overlayfs) ;;
*) PROG=$NLAYERFS ;;
esac
PROG=${NLAYERFS_PODMAN_PROGRAM:-$PROG}
BUSYBOX=$(command -v busybox 2>/dev/null)
if [ -n "$SKIP_ALL" ]; then
	:
elif ! command -v podman >/dev/null; then
	SKIP_ALL="podman is not installed (tools/install-deps test installs it)"
elif [ -z "$BUSYBOX" ] || ldd "$BUSYBOX" >/dev/null 2>&1; then
	SKIP_ALL="no static busybox to build the image from (Debian: busybox-static)"
elif [ ! -x "$IMPORT" ]; then
	SKIP_ALL="nlayerfs-import is not built in $NLBUILD"
fi

P=$T/podman
mkdir -p "$P/root" "$P/run" "$P/ctx" "$P/nvm" "$P/hdd" "$P/mnt"
cat >"$P/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$P/root"
runroot = "$P/run"

[storage.options.overlay]
mount_program = "$PROG"
EOF
export CONTAINERS_STORAGE_CONF=$P/storage.conf
# The private root and runroot come from storage.conf: podman 4 drops the
# driver options of storage.conf, mount_program among them, when --root,
# --runroot or --storage-driver is given on its command line.
pm() {
	timeout 60 podman --cgroup-manager cgroupfs --events-backend none "$@"
}
cleanup_podman() {
	pm rm -af >/dev/null 2>&1
	pm rmi -af >/dev/null 2>&1
	# what podman left mounted under the private root
	awk -v t="$P/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; done
}

# Two layers: busybox and the data below, then a layer that adds to it.
make_context() {
	local r=$P/ctx/base
	mkdir -p "$r/bin" "$r/data" "$r/tree/sub" "$r/keep"
	cp "$BUSYBOX" "$r/bin/busybox"
	for c in sh cat echo rm mv ls mkdir; do ln -s busybox "$r/bin/$c"; done
	echo alpha >"$r/data/a.txt"
	echo beta >"$r/data/b.txt"
	echo doomed >"$r/data/gone.txt"
	echo leaf >"$r/tree/sub/leaf"
	echo top >"$r/tree/top"
	echo kept >"$r/keep/k"
	mkdir -p "$P/ctx/upper/tree/sub" "$P/ctx/upper/data"
	echo upper-layer >"$P/ctx/upper/tree/sub/second"
	echo later >"$P/ctx/upper/data/later.txt"
	printf 'FROM scratch\nCOPY base/ /\nCOPY upper/ /\n' >"$P/ctx/Containerfile"
}

# The changes the container makes, as a shell script for busybox sh.
CHANGES='cat /data/a.txt /tree/sub/second && echo new >/data/new.txt &&
echo more >>/data/b.txt && rm /data/gone.txt && mv /tree /moved &&
rm /moved/top && mkdir /moved/made && echo made >/moved/made/f'

# apply_changes ROOT: the changes of $CHANGES, made by host tools on ROOT
apply_changes() {
	(cd "$1" && cat data/a.txt tree/sub/second && echo new >data/new.txt &&
		echo more >>data/b.txt && rm data/gone.txt && mv tree moved &&
		rm moved/top && mkdir moved/made && echo made >moved/made/f)
}

# expected: the same changes on a plain copy of both layers
make_expected() {
	local e=$P/expected
	rm -rf "$e" && mkdir -p "$e"
	cp -a "$P/ctx/base/." "$e/" && cp -a "$P/ctx/upper/." "$e/" && apply_changes "$e" >/dev/null
}

# tree DIR: every entry's path, type, mode and content hash (what podman
# adds to every root, such as /etc/hosts mount points, is left out)
tree() {
	(cd "$1" && find . \( -path ./etc -o -path ./run -o -path ./dev -o -path ./proc \
		-o -path ./sys -o -path ./tmp \) -prune -o -mindepth 1 -printf '%p %y %m %l\n' | sort &&
		find . \( -path ./etc -o -path ./run -o -path ./dev -o -path ./proc \
			-o -path ./sys -o -path ./tmp \) -prune -o -type f -print0 |
			sort -z | xargs -0r sha256sum)
}

build_image() {
	make_context
	pm build -q -t localhost/nltest:base "$P/ctx" >"$P/build.out" 2>&1 ||
		{ cat "$P/build.out"; return 1; }
	[ "$(pm image inspect -f '{{len .RootFS.Layers}}' localhost/nltest:base)" = 2 ]
}

# A container whose OCI runtime cannot start here (crun refuses hybrid
# cgroups, or raising rlimits, inside some CI containers) still gets its
# root mounted by the mount program: podman mount, and the same changes.
changes_via_podman_mount() {
	local root
	root=$(pm mount c1) && [ -d "$root/data" ] || { echo "podman mount c1: $root"; return 1; }
	case $(fs_type_of "$root") in
	fuse.*) ;;
	*) echo "$root is mounted as $(fs_type_of "$root"), not by the mount program"; return 1 ;;
	esac
	apply_changes "$root" && pm unmount c1 >/dev/null
}

# runc starts containers where crun refuses this host's hybrid cgroups; the
# limits stay below the hard limits a CI container may impose.
RUNTIME=()
! command -v runc >/dev/null || RUNTIME=(--runtime runc)
run_container() {
	local out
	out=$(pm run --name c1 --network none --pull never "${RUNTIME[@]}" \
		--ulimit nofile=1024:1024 --ulimit nproc=1024:1024 localhost/nltest:base /bin/sh -c "$CHANGES" 2>&1)
	if [ $? != 0 ] && grep -qE "OCI runtime|crun: |runc: " <<<"$out" &&
		! grep -qi "mount program" <<<"$out"; then
		echo "$out" | head -1 >"$P/runtime-note"
		out=$(changes_via_podman_mount) || { echo "$out"; return 1; }
	elif [ -z "$out" ] || ! pm inspect c1 >/dev/null 2>&1; then
		echo "$out"; return 1
	fi
	# read through the mount program: a lower file and a file of the upper image layer
	[ "$out" = "$(printf 'alpha\nupper-layer')" ] || { echo "read: $out"; return 1; }
}

commit_and_save() {
	pm commit -q c1 localhost/nltest:committed >/dev/null &&
		pm save -q --format oci-archive -o "$P/committed.tar" localhost/nltest:committed &&
		[ -s "$P/committed.tar" ]
}

committed_tree_matches() {
	make_expected
	"$IMPORT" -q --nvm "$P/nvm" --hdd "$P/hdd" --name nltest/committed \
		"oci-archive:$P/committed.tar" || return 1
	"$NLAYERFS" -o "image=nltest/committed,nvm=$P/nvm" "$P/mnt" || return 1
	MOUNTED+=("$P/mnt")
	tree "$P/expected" >"$P/want"
	tree "$P/mnt" >"$P/got"
	nl_umount "$P/mnt" || return 1
	diff "$P/want" "$P/got"
}

if [ -z "$SKIP_ALL" ]; then
	echo "# mount_program: $PROG; podman $(podman --version | awk '{ print $3 }')"
	trap 'cleanup_podman; nl_cleanup' EXIT
fi
check "podman build: an image of two layers from a static busybox" build_image
[ -n "$SKIP_ALL" ] || pm image exists localhost/nltest:base || SKIP_ALL="podman build failed"
check "podman run on the mount program: reads, writes, deletes, renames a lower directory" run_container
[ ! -s "$P/runtime-note" ] ||
	diag "the OCI runtime cannot start containers here ($(cat "$P/runtime-note")):" \
		"the changes were made through podman mount of the container instead"
check "podman commit, save --format oci-archive" commit_and_save
check "the committed image, imported and mounted by name, holds exactly the changes" committed_tree_matches
nl_done
