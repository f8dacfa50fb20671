# SPDX-License-Identifier: GPL-2.0-or-later
# Metadata images of HDD layers through a real mount: with layer_meta=on the
# merged tree shows exactly what layer_meta=off shows (every attribute,
# xattrs, link targets); a cold walk of a fresh mount touches nothing under
# the HDD layers; a layer edited between mounts, a corrupt image and a
# changed file found at open are detected, never served, and rebuilt.
export LC_ALL=C
SRC=${NLAYERFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
BUILD=${NLAYERFS_BUILD:-$SRC/build}
NLAYERFS=${NLAYERFS:-$BUILD/nlayerfs}
CTL=$BUILD/nlayerfsctl
SAN=${NLAYERFS_SAN:-0}
N=0 FAILED=0 SKIP="" T="" MNT="" DPID="" LOGPOS=0

ok() { N=$((N + 1)); echo "ok $N - $1"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1"; shift; printf '%s\n' "$@" | sed 's/^/# /'; }
skip() { N=$((N + 1)); echo "ok $N - $1 # SKIP $2"; }

check() {
	local name=$1
	shift
	if [ -n "$SKIP" ]; then skip "$name" "$SKIP"; return; fi
	if "$@" >"$T/out" 2>&1 </dev/null; then ok "$name"; else not_ok "$name" "$(cat "$T/out")"; fi
	# a failed case leaves no mount to the next
	if is_mounted "$MNT"; then umount_meta; fi
}

# check_traced NAME CMD...: a check that watches the daemon with strace.
check_traced() {
	if [ -z "$SKIP" ] && ! command -v strace >/dev/null; then skip "$1" "no strace"; return; fi
	check "$@"
}

is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

cleanup() {
	if [ -n "$T" ] && is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
	fi
	[ -z "$DPID" ] || wait "$DPID" 2>/dev/null
	[ -z "$T" ] || rm -rf "$T"
}

# mount_meta on|off [EXTRA]: read-only union of l1:l2, both on the HDD
# tier. The mount runs in the foreground so that the tier service it
# starts keeps its stderr: its messages land in $T/daemon.log. With
# host_idle=0 the service exits right after the last unmount, so that
# each mount here starts one with its own settings.
mount_meta() {
	local opts=lowerdir=$T/hdd/l1:$T/hdd/l2,nvm=$T/nvm,hdd=$T/hdd,trace_window=1,host_idle=0,layer_meta=$1
	local i
	"$NLAYERFS" nlayerfs "$MNT" -f -o "$opts${2:+,$2}" 2>>"$T/daemon.log" &
	DPID=$!
	started
}

# The daemon opens the tiers (and images) at FUSE INIT, after the mount
# appears: its control socket answers once that is done.
started() {
	local i
	for i in $(seq 200); do is_mounted "$MNT" && break; sleep 0.1; done
	for i in $(seq 200); do "$CTL" status "$MNT" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

umount_meta() {
	local host
	host=$(status_of host_pid)
	fusermount3 -u "$MNT" || return 1
	wait "$DPID" 2>/dev/null
	DPID=""
	# the service finishes its work (images, copies) and exits
	while [ -n "$host" ] && [ -d "/proc/$host" ]; do sleep 0.05; done
}

status_of() { "$CTL" status --raw "$MNT" | awk -v k="$1" '$1 == k { print $2 }'; }

# Every attribute of every entry, its link target and all its xattrs
# (not st_dev: each FUSE mount gets its own device number).
snapshot() {
	(cd "$MNT" && find . -printf '%p %y %m %U %G %s %b %n %i %T@ %C@ %A@ %l\n' | sort &&
		find . -print0 | sort -z | xargs -0 getfattr -h -d -m - -e hex 2>/dev/null)
}

# ---- the tree ----

make_layers() {
	local deep=$T/hdd/l1/deep i
	mkdir -p "$T/hdd/l1/etc/empty" "$T/hdd/l1/bin" "$T/hdd/l1/opq" "$T/hdd/l1/opq2" \
		"$T/hdd/l2/etc" "$T/hdd/l2/opq" "$T/hdd/l2/opq2" "$T/hdd/l2/lib" "$T/nvm" "$MNT"
	echo passwd >"$T/hdd/l1/etc/passwd"
	echo lower >"$T/hdd/l2/etc/passwd"
	echo group >"$T/hdd/l2/etc/group"
	echo hidden >"$T/hdd/l2/etc/shadow"
	echo hidden >"$T/hdd/l2/etc/gshadow"
	mknod "$T/hdd/l1/etc/shadow" c 0 0		# whiteout
	touch "$T/hdd/l1/etc/.wh.gshadow"		# old-style whiteout
	echo sh >"$T/hdd/l1/bin/sh"
	ln "$T/hdd/l1/bin/sh" "$T/hdd/l1/bin/dash"
	ln -s ../lib/libc.so "$T/hdd/l1/bin/libc"
	echo ping >"$T/hdd/l1/bin/ping"
	chmod 4755 "$T/hdd/l1/bin/ping"
	chown 12:34 "$T/hdd/l1/bin/ping"
	setfattr -n security.capability -v 0x0100000200040000000000000000000000000000 "$T/hdd/l1/bin/ping"
	setfattr -n user.origin -v "layer one" "$T/hdd/l1/bin/ping"
	mkfifo "$T/hdd/l1/bin/fifo"
	setfattr -n trusted.overlay.opaque -v y "$T/hdd/l1/opq"
	touch "$T/hdd/l1/opq/.wh..wh..opq" "$T/hdd/l1/opq2/.wh..wh..opq"
	echo below >"$T/hdd/l2/opq/under"
	echo below >"$T/hdd/l2/opq2/under"
	echo libc >"$T/hdd/l2/lib/libc.so"
	truncate -s 64M "$T/hdd/l2/lib/sparse"
	touch "$T/hdd/l2/lib/$(printf 'n%.0s' $(seq 255))"
	for i in $(seq 30); do deep=$deep/d$i; done
	mkdir -p "$deep" && echo deep >"$deep/file"
	touch -d @1000.123456789 "$T/hdd/l1/etc/passwd"
}

# Reading a directory or a link moves its access time once (relatime)
# after a change; do that now, so that both snapshots see the same times.
settle_atimes() {
	sleep 0.05
	find "$T/hdd" -type d -exec ls -a {} + >/dev/null
	find "$T/hdd" -type l -exec readlink {} + >/dev/null
}

# ---- the cases ----

off_snapshot() {
	mount_meta off || return 1
	snapshot >"$T/off" && umount_meta
	[ -s "$T/off" ] && grep -q "bin/ping" "$T/off" && grep -q security.capability "$T/off"
}

images_built() {
	mount_meta on || return 1
	"$CTL" meta-wait "$MNT" 120 || return 1
	[ "$(status_of meta_layers)" = 2 ] && [ "$(status_of meta_pending)" = 0 ] &&
		[ "$(ls "$T/nvm/meta" | wc -l)" = 2 ] || { "$CTL" status "$MNT"; return 1; }
	"$CTL" status --raw "$MNT" | grep -q "^metadata images: 2 layers, [0-9]* bytes" &&
		[ "$(status_of meta_bytes)" = "$(cat "$T"/nvm/meta/*.img | wc -c)" ] &&
		[ "$(status_of nvm_used)" -ge "$(status_of meta_bytes)" ] && umount_meta
}

same_as_off() {
	snapshot >"$T/on" || return 1
	diff "$T/off" "$T/on"
}

identical_with_images() {
	mount_meta on || return 1
	same_as_off || return 1
	[ "$(status_of meta_hits)" -gt 0 ] || { "$CTL" status "$MNT"; return 1; }
	umount_meta
}

# strace the daemon during a cold walk: which calls reach the HDD layers.
hdd_calls_during_walk() {
	local pid
	pid=$(status_of host_pid)
	strace -f -y -qq -p "$pid" -o "$T/strace" \
		-e trace=newfstatat,statx,openat,getdents64,lgetxattr,llistxattr,getxattr,listxattr &
	local spid=$!
	sleep 1
	(cd "$MNT" && find . -printf '%p %y %m %U %G %s %b %n %i %T@ %C@\n' >/dev/null &&
		find . -print0 | xargs -0 getfattr -h -d -m - >/dev/null 2>&1)
	sleep 0.5
	kill "$spid"
	wait "$spid" 2>/dev/null
	grep -c -- "$T/hdd/" "$T/strace"
}

# (A long trace window and quiet time: the verification walk waits until the
# trace ends, which a slow walk, under the sanitizers, could otherwise let
# happen while the walk is traced.)
cold_walk_skips_hdd() {
	local n misses
	mount_meta on trace_window=600,trace_quiet=600 || return 1
	# a walk of the service still under way (slow under the sanitizers) ends first
	"$CTL" meta-wait "$MNT" 120 >/dev/null || return 1
	n=$(hdd_calls_during_walk)
	misses=$(status_of meta_misses)
	umount_meta || return 1
	[ "$n" = 0 ] || { echo "$n calls under $T/hdd:"; grep -- "$T/hdd/" "$T/strace" | head; return 1; }
	[ "$misses" = 0 ] || { echo "$misses lookups missed the images"; return 1; }
	# the same walk without images does reach the layers
	mount_meta off trace_window=600 || return 1
	n=$(hdd_calls_during_walk)
	umount_meta || return 1
	[ "$n" -gt 0 ] || { echo "the probe saw no HDD access without images"; return 1; }
}

# The daemon's messages since the case began (log_mark).
log_mark() { LOGPOS=$(stat -c %s "$T/daemon.log" 2>/dev/null || echo 0); }
log_has() {
	tail -c +$((LOGPOS + 1)) "$T/daemon.log" | grep -q -- "$1" ||
		{ echo "no '$1' in:"; tail -c +$((LOGPOS + 1)) "$T/daemon.log"; return 1; }
}

# Between mounts: a new top-level entry in l1 (its root changes) and a
# deep change in l2 (its root does not). The first is refused at open, the
# second found by the verification walk; both rebuilt, nothing stale.
edited_between_mounts() {
	log_mark
	echo new >"$T/hdd/l1/newfile"
	chmod 0600 "$T/hdd/l2/lib/libc.so"
	echo "longer than before" >"$T/hdd/l2/etc/group"
	settle_atimes
	mount_meta off && snapshot >"$T/off" && umount_meta || return 1
	mount_meta on || return 1
	log_has "refused: the layer directory was changed" || return 1
	"$CTL" meta-verify "$MNT" 120 || return 1
	log_has "changed; metadata image rebuilt" || return 1
	[ "$(status_of meta_rebuilds)" -ge 2 ] || { "$CTL" status "$MNT"; return 1; }
	same_as_off && umount_meta
}

corrupt_image_rebuilt() {
	local img
	log_mark
	img=$(ls "$T"/nvm/meta/*.img | head -1)
	printf 'garbage' | dd of="$img" bs=1 seek=300 conv=notrunc 2>/dev/null
	mount_meta on || return 1
	log_has "refused: checksum mismatch" || return 1
	same_as_off || return 1		# served by the layer meanwhile
	"$CTL" meta-wait "$MNT" 120 || return 1
	[ "$(status_of meta_layers)" = 2 ] || return 1
	umount_meta && mount_meta on && same_as_off && umount_meta
}

truncated_image_rebuilt() {
	local img
	log_mark
	img=$(ls "$T"/nvm/meta/*.img | tail -1)
	truncate -s 100 "$img"
	mount_meta on || return 1
	log_has "refused: truncated" || return 1
	"$CTL" meta-wait "$MNT" 120 && same_as_off && umount_meta
}

# A file changed behind the mount is found when its data is opened from
# the layer: the image is dropped at once and rebuilt.
changed_file_found_at_open() {
	log_mark
	mount_meta on || return 1
	"$CTL" meta-wait "$MNT" 120 || return 1
	touch -d @2000 "$T/hdd/l2/lib/libc.so"
	cat "$MNT/lib/libc.so" >/dev/null || return 1
	log_has "lib/libc.so differs from its metadata image" || return 1
	"$CTL" meta-wait "$MNT" 120 || return 1
	log_has "changed; metadata image rebuilt" || return 1
	[ "$(stat -c %Y "$MNT/etc/group")" = "$(stat -c %Y "$T/hdd/l2/etc/group")" ] && umount_meta
}

# A promoted file is read from its NVM copy, and the open asks nothing of
# the HDD layer: the image's stat stands in for the source's. Proof by
# strace, and by bytes: the layer file is rewritten behind the mount with
# its size, mtime and inode kept, and the mount still shows the copy.
promote_group() {
	mount_meta on trace_window=600 || return 1
	"$CTL" meta-wait "$MNT" 120 || return 1
	cat "$MNT/etc/group" >/dev/null || return 1
	"$CTL" trace stop "$MNT" && "$CTL" promote "$MNT" && "$CTL" wait "$MNT" 120 || return 1
	[ "$(status_of promoted_files)" -ge 1 ] || { "$CTL" status "$MNT"; return 1; }
	"$CTL" meta-wait "$MNT" 120 && umount_meta
}

promoted_read_without_hdd() {
	local f=$T/hdd/l2/etc/group mtime n orig
	promote_group || return 1
	orig=$(cat "$f")
	mtime=$(stat -c %.9Y "$f")
	head -c "$(stat -c %s "$f")" /dev/zero | tr '\0' X | dd of="$f" conv=notrunc status=none &&
		touch -d "@$mtime" "$f" || return 1
	[ "$(cat "$f")" != "$orig" ] || return 1
	# no trace window: no verification walk while we look
	mount_meta on trace=off,trace_window=600 || return 1
	strace -f -y -qq -p "$(status_of host_pid)" -o "$T/strace" -e trace=%file,%desc &
	local spid=$!
	sleep 1
	[ "$(cat "$MNT/etc/group")" = "$orig" ] || { echo "read $(cat "$MNT/etc/group")"; return 1; }
	sleep 0.5
	kill "$spid"
	wait "$spid" 2>/dev/null
	n=$(grep -c -- "$T/hdd/" "$T/strace")
	[ "$n" = 0 ] || { echo "$n calls under $T/hdd:"; grep -- "$T/hdd/" "$T/strace" | head; return 1; }
	grep -q "$T/nvm/objects/" "$T/strace" || { echo "no open of the copy"; head "$T/strace"; return 1; }
	umount_meta
}

# The other side: a source that changed is dropped, never served, once
# the image (verified after each window, or here by hand) shows it.
changed_source_dropped() {
	local f=$T/hdd/l2/etc/group before
	echo more >>"$f"
	mount_meta on trace=off,trace_window=600 || return 1
	before=$(status_of promoted_files)
	"$CTL" meta-verify "$MNT" 120 || return 1
	[ "$(cat "$MNT/etc/group")" = "$(cat "$f")" ] || { echo "stale copy served"; return 1; }
	[ "$(status_of promoted_files)" -lt "$before" ] || { "$CTL" status "$MNT"; return 1; }
	umount_meta
}

# Hot files of earlier starts that are not on NVM are queued once the start
# is over (trace_quiet seconds without a new first open), not at the mount,
# and with the mount still there.
hot_files_queued_after_start() {
	local i p0
	promote_group || return 1
	mount_meta on trace=off,trace_window=600 || return 1
	p0=$(status_of promoted_files)
	"$CTL" evict "$MNT" "$MNT/etc/group" && umount_meta || return 1
	mount_meta on trace_quiet=2,trace_window=600 || return 1
	[ "$(status_of promoted_files)" = $((p0 - 1)) ] && [ "$(status_of queue)" = 0 ] ||
		{ echo "queued at the mount ($p0 promoted before)"; "$CTL" status "$MNT"; return 1; }
	for i in $(seq 100); do
		[ "$(status_of promoted_files)" = "$p0" ] && break
		sleep 0.1
	done
	[ "$(status_of promoted_files)" = "$p0" ] || { "$CTL" status "$MNT"; return 1; }
	[ "$(cat "$MNT/etc/group")" = "$(cat "$T/hdd/l2/etc/group")" ] && umount_meta
}

# Copy-up reads the lower xattrs and link target from the image.
copy_up_from_image() {
	local opts=lowerdir=$T/hdd/l1:$T/hdd/l2,upperdir=$T/upper,workdir=$T/work
	mkdir -p "$T/upper" "$T/work"
	"$NLAYERFS" nlayerfs "$MNT" -f -o "$opts,nvm=$T/nvm,hdd=$T/hdd,layer_meta=on" \
		2>>"$T/daemon.log" &
	DPID=$!
	started && "$CTL" meta-wait "$MNT" 120 || return 1
	chmod 4711 "$MNT/bin/ping" && touch -h "$MNT/bin/libc" || return 1
	[ "$(status_of meta_misses)" = 0 ] || { "$CTL" status "$MNT"; return 1; }
	[ "$(getfattr -h --only-values -n user.origin "$T/upper/bin/ping")" = "layer one" ] &&
		[ "$(readlink "$T/upper/bin/libc")" = ../lib/libc.so ] &&
		[ "$(stat -c %a "$T/upper/bin/ping")" = 4711 ] || return 1
	umount_meta
}

# ---- main ----

if [ "$(id -u)" != 0 ]; then SKIP="needs root"
elif [ ! -c /dev/fuse ]; then SKIP="no /dev/fuse"
elif ! command -v setfattr >/dev/null || ! command -v getfattr >/dev/null; then SKIP="no setfattr/getfattr"
elif [ ! -x "$NLAYERFS" ] || [ ! -x "$CTL" ]; then
	echo "not ok 1 - the daemon and nlayerfsctl exist in $BUILD"; echo "1..1"; exit 1
fi
T=$(mktemp -d /tmp/nl-G-meta-XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
MNT=$T/mnt
[ -n "$SKIP" ] || { make_layers && settle_atimes; }

check "layer_meta=off: the reference snapshot" off_snapshot
check "layer_meta=on: both HDD layers get an image, counted in status" images_built
check "the same attributes, xattrs and links with images as without" identical_with_images
check_traced "a cold walk makes no call under the HDD layers" cold_walk_skips_hdd
check "layers edited between mounts: refused or found, rebuilt, not stale" edited_between_mounts
check "a corrupt image is refused and rebuilt" corrupt_image_rebuilt
check "a truncated image is refused and rebuilt" truncated_image_rebuilt
check "a file changed behind the mount drops the image at open" changed_file_found_at_open
check "copy-up takes xattrs and link targets from the image" copy_up_from_image
check_traced "a promoted file is read from NVM, nothing asked of its HDD layer" \
	promoted_read_without_hdd
check "a changed source is dropped once the image shows it, never served" changed_source_dropped
check "hot files not on NVM are queued after the start, not at the mount" hot_files_queued_after_start
if [ "$SAN" = 1 ] && [ -s "$T/daemon.log" ] && grep -q "Sanitizer" "$T/daemon.log"; then
	not_ok "no sanitizer reports" "$(cat "$T/daemon.log")"
fi
echo "1..$N"
[ "$FAILED" = 0 ]
