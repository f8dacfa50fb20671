# SPDX-License-Identifier: GPL-2.0-or-later
# Tiering through a real mount: layers on an "HDD" directory, nvm= on
# another. A traced start promotes exactly the files it opened; the index
# survives a remount and reads come from NVM; a small budget evicts the
# coldest copies; identical files share one object; kill -9 during
# promotions loses nothing; a broken pool refuses the mount.
export LC_ALL=C
SRC=${NLAYERFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
BUILD=${NLAYERFS_BUILD:-$SRC/build}
NLAYERFS=${NLAYERFS:-$BUILD/nlayerfs}
CTL=$BUILD/nlayerfsctl
SAN=${NLAYERFS_SAN:-0}
N=0 FAILED=0 SKIP="" T="" MNT=""

ok() { N=$((N + 1)); echo "ok $N - $1"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1"; shift; printf '%s\n' "$@" | sed 's/^/# /'; }

# check NAME CMD...: ok when CMD succeeds; its output explains a failure.
check() {
	local name=$1
	shift
	if [ -n "$SKIP" ]; then N=$((N + 1)); echo "ok $N - $name # SKIP $SKIP"; return; fi
	if "$@" >"$T/out" 2>&1 </dev/null; then ok "$name"; else not_ok "$name" "$(cat "$T/out")"; fi
}

is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

cleanup() {
	local m
	for m in "$MNT" "$T/plain"; do
		if [ -n "$T" ] && is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
		fi
	done
	[ -z "$T" ] || rm -rf "$T"
}

# The pid of the tier service serving $MNT.
daemon_pid() {
	local p
	p=$("$CTL" status --raw "$MNT" 2>/dev/null | awk '$1 == "host_pid" { print $2 }')
	[ -n "$p" ] && echo "$p"
}

# mount_tier [EXTRA]: read-only union of l1:l2 with the tiers. The tier
# service exits as soon as it is idle after an unmount (host_idle=0), so
# that a mount with other settings starts one with its own.
mount_tier() {
	local opts=lowerdir=$T/hdd/l1:$T/hdd/l2,nvm=$T/nvm,hdd=$T/hdd,host_idle=0${1:+,$1}
	if [ "$SAN" = 1 ]; then
		"$NLAYERFS" nlayerfs "$MNT" -f -o "$opts" 2>>"$T/san.log" &
		local i
		for i in $(seq 50); do is_mounted "$MNT" && break; sleep 0.1; done
		# ready as a background mount is when it returns: the tier
		# service has opened the index (and swept a crash's leftovers)
		# and answers on the control socket
		for i in $(seq 100); do daemon_pid >/dev/null && break; sleep 0.1; done
	else
		"$NLAYERFS" nlayerfs "$MNT" -o "$opts"
	fi
	is_mounted "$MNT"
}

umount_tier() {
	local pid
	pid=$(daemon_pid)
	fusermount3 -u "$MNT" || return 1
	# the service finishes its work and closes the index: let it
	while [ -n "$pid" ] && [ -d "/proc/$pid" ]; do sleep 0.05; done
}

status_of() { "$CTL" status --raw "$MNT" | awk -v k="$1" '$1 == k { print $2 }'; }

# The objects on NVM and the digests of the given layer files must match.
objects_are() {
	local want have
	want=$(cd "$T/hdd" && sha256sum "$@" | awk '{ print $1 }' | sort -u)
	have=$(ls "$T/nvm/objects" | sort)
	[ "$want" = "$have" ] || { echo "want:"; echo "$want"; echo "have:"; echo "$have"; return 1; }
}

object_bytes() { find "$T/nvm/objects" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
# NVM use: the objects and the metadata images of the HDD layers.
nvm_bytes() { find "$T/nvm/objects" "$T/nvm/meta" -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }

# ---- the cases ----

HOT="l1/a l1/b l1/dir/e l1/x l2/y"

traced_start() {
	local f
	mount_tier || return 1
	for f in $HOT; do cat "$MNT/${f#*/}" >/dev/null || return 1; done
	"$CTL" trace stop "$MNT" && "$CTL" promote "$MNT" && "$CTL" wait "$MNT" 30
}

start_promotes_exactly_hot() {
	objects_are $HOT || return 1
	[ "$(status_of promoted_files)" = 5 ] || { "$CTL" status "$MNT"; return 1; }
	[ "$(status_of queue)" = 0 ]
}

bytes_accounted() {
	local used
	used=$(status_of nvm_used)
	[ "$used" = "$(nvm_bytes)" ] && [ "$used" -gt 0 ] || { echo "nvm_used $used, objects and images $(nvm_bytes)"; return 1; }
}

one_object_for_twins() {
	cmp "$T/hdd/l1/x" "$T/hdd/l2/y" || return 1
	[ "$(status_of objects)" = 4 ] && [ "$(ls "$T/nvm/objects" | wc -l)" = 4 ]
}

contents_identical() {
	local f
	for f in a b c d dir/e x y; do
		if [ -e "$T/hdd/l1/$f" ]; then cmp "$MNT/$f" "$T/hdd/l1/$f" || return 1
		else cmp "$MNT/$f" "$T/hdd/l2/$f" || return 1; fi
	done
}

# With the file held open, the daemon's descriptor shows where it reads.
served_from() {
	local f=$1 where=$2 pid rc=1
	pid=$(daemon_pid) || { echo "no daemon"; return 1; }
	exec 7<"$MNT/$f"
	ls -l "/proc/$pid/fd" | grep -q -- "-> $where" && rc=0
	[ $rc = 0 ] || ls -l "/proc/$pid/fd"
	exec 7<&-
	return $rc
}

remount_keeps_index() {
	umount_tier && mount_tier || return 1
	[ "$(status_of promoted_files)" = 5 ] && [ "$(status_of objects)" = 4 ] &&
		[ "$(status_of nvm_used)" = "$(nvm_bytes)" ] || { "$CTL" status "$MNT"; return 1; }
}

reads_from_nvm() {
	served_from a "$T/nvm/objects/$(sha256sum <"$T/hdd/l1/a" | cut -d' ' -f1)" &&
		served_from c "$T/hdd/l1/c" && contents_identical
}

# fstat of an open promoted file, also once unlinked, gives the file's own
# attributes, not those of its NVM copy (mode, owner, times, inode differ).
promoted_fstat_after_unlink() {
	local pid rc=0
	umount_tier || return 1
	mkdir -p "$T/up" "$T/wk"
	"$NLAYERFS" nlayerfs "$MNT" -o "lowerdir=$T/hdd/l1:$T/hdd/l2,upperdir=$T/up,workdir=$T/wk,nvm=$T/nvm,hdd=$T/hdd,host_idle=0,trace=off,timeout=0" ||
		return 1
	pid=$(daemon_pid) || return 1
	python3 - "$MNT/b" "$pid" "$T/nvm/objects/" <<'PY' || rc=1
import os, sys
path, pid, objects = sys.argv[1:]
fd = os.open(path, os.O_RDONLY)
if not any(os.readlink(f"/proc/{pid}/fd/{d}").startswith(objects)
           for d in os.listdir(f"/proc/{pid}/fd")):
    sys.exit("b is not read from its NVM copy")
want = os.stat(path)
os.unlink(path)
got = os.fstat(fd)
keys = ("st_ino", "st_mode", "st_uid", "st_gid", "st_size", "st_mtime_ns")
bad = [(k, getattr(want, k), getattr(got, k)) for k in keys if getattr(want, k) != getattr(got, k)]
print("before unlink:", {k: getattr(want, k) for k in keys}, "nlink after:", got.st_nlink)
if bad or got.st_nlink != 0 or want.st_uid != 1234 or want.st_mode & 0o7777 != 0o640:
    sys.exit(f"fstat after unlink differs: {bad}, nlink {got.st_nlink}")
PY
	umount_tier && rm -rf "$T/up" "$T/wk" && mount_tier && return $rc
}

# Budget below what the index holds plus d: a (needed by two starts) and
# d (needed now) stay, colder copies go, NVM never over the budget.
budget_evicts_coldest() {
	local budget=80000 used
	umount_tier && mount_tier nvm_size=$budget || return 1
	# the index keeps times in seconds: this start must be the later one
	sleep 1.1
	cat "$MNT/a" "$MNT/d" >/dev/null
	"$CTL" trace stop "$MNT" && "$CTL" promote "$MNT" && "$CTL" wait "$MNT" 30 || return 1
	used=$(status_of nvm_used)
	[ "$used" -le $budget ] && [ "$(object_bytes)" -le $budget ] || { echo "used $used"; return 1; }
	[ -e "$T/nvm/objects/$(sha256sum <"$T/hdd/l1/a" | cut -d' ' -f1)" ] || { echo "hot a evicted"; return 1; }
	[ -e "$T/nvm/objects/$(sha256sum <"$T/hdd/l1/d" | cut -d' ' -f1)" ] || { echo "d not promoted"; return 1; }
	[ "$(status_of promoted_files)" -lt 6 ] && contents_identical
}

# A descriptor opened on the NVM copy keeps reading it after eviction.
# The trace window closed by the case before is followed, up to a second
# later, by a background write-back pass that promotes the hot files again:
# that pass is run to its end first, or it would bring copies back after
# the evict.
evict_by_hand() {
	local rc=0
	"$CTL" writeback "$MNT" --wait >/dev/null || return 1
	served_from a "$T/nvm/objects/" || return 1
	exec 8<"$MNT/a"
	"$CTL" evict "$MNT" >/dev/null || rc=1
	cmp - "$T/hdd/l1/a" <&8 || rc=1
	exec 8<&-
	[ $rc = 0 ] || return 1
	[ "$(status_of promoted_files)" = 0 ] && [ "$(object_bytes)" = 0 ] ||
		{ echo "NVM copies left after the evict:"; "$CTL" status --raw "$MNT"; ls -l "$T/nvm/objects"; return 1; }
	contents_identical
}

trace_start_stop() {
	local starts
	starts=$(status_of cold_starts)
	"$CTL" trace start "$MNT" >/dev/null && [ "$(status_of trace)" = active ] &&
		[ "$(status_of cold_starts)" = $((starts + 1)) ] || { "$CTL" status "$MNT"; return 1; }
	"$CTL" trace stop "$MNT" >/dev/null && [ "$(status_of trace)" = stopped ]
}

# Nothing in the merged tree; a root-only socket; a mount without tiering
# has none, and the tool says so.
control_channel_private() {
	local sock
	[ -z "$(find "$MNT" -type s)" ] || { echo "a socket in the mount"; return 1; }
	sock=$(find /run/nlayerfs -type s -newer "$T/hdd/l1/a" -perm 0600 | head -1)
	[ -n "$sock" ] && [ "$(stat -c %a /run/nlayerfs)" = 700 ] || { ls -la /run/nlayerfs; return 1; }
	mkdir -p "$T/plain"
	"$NLAYERFS" nlayerfs "$T/plain" -o "lowerdir=$T/hdd/l1" || { echo "plain mount"; return 1; }
	# status of a mount without tiering: its keeper's part, and why no more
	"$CTL" status "$T/plain" >"$T/out" 2>"$T/err"
	fusermount3 -u "$T/plain"
	grep -q "this nlayerfs mount has no tiering" "$T/err" || { cat "$T/err"; return 1; }
	grep -q "server: *pid" "$T/out" || { cat "$T/out"; return 1; }
	# commands about the tier are refused
	if "$CTL" wait "$T/plain" 1 2>/dev/null; then echo "wait on a plain mount"; return 1; fi
}

# status: a short summary for people by default, key/value lines with --raw
status_summary() {
	local human raw
	human=$("$CTL" status "$MNT") && raw=$("$CTL" status --raw "$MNT") || return 1
	echo "$human"
	grep -q "^$MNT: tiering on" <<<"$human" && grep -q "^  NVM: " <<<"$human" &&
		grep -q "^  layer 0: *$T/hdd/l1 on HDD" <<<"$human" &&
		! grep -q "^nvm_used " <<<"$human" &&
		grep -q "^nvm_used [0-9]*$" <<<"$raw" && grep -q "^promoted_files [0-9]*$" <<<"$raw"
}

hotlist_round_trip() {
	"$CTL" trace export "$T/hot.list" "$MNT" || return 1
	head -1 "$T/hot.list" | grep -q '^# nlayerfs hot list' &&
		grep -q " a$" "$T/hot.list" && grep -q " d$" "$T/hot.list" || { cat "$T/hot.list"; return 1; }
	"$CTL" trace import "$T/hot.list" "$MNT" && "$CTL" wait "$MNT" 30 || return 1
	[ "$(status_of promoted_files)" -gt 0 ] && contents_identical
}

# Large files in promotion, then kill -9 (promotion starts as the trace
# is folded in, during the reads). Copies may be fast, so the leftovers of
# a crash at a worse moment are planted too: a temp file and an object the
# index never committed. Afterwards no object may be partial or served
# without the index, and every file reads its original bytes.
kill_during_promotion() {
	local i pid name c_obj
	umount_tier || return 1
	for i in $(seq 8); do head -c $((4 * 1024 * 1024 + i)) /dev/urandom >"$T/hdd/l2/big$i"; done
	mount_tier || return 1
	for i in $(seq 8); do head -c 1 "$MNT/big$i" >/dev/null; done
	pid=$(daemon_pid) && kill -9 "$pid"
	while [ -d "/proc/$pid" ]; do sleep 0.05; done
	echo "objects at the kill: $(ls "$T/nvm/objects" | wc -l)"
	umount -l "$MNT" 2>/dev/null || fusermount3 -u -z "$MNT"
	# the mount's keeper may have started a service that took it over: no
	# service of this NVM directory left (it holds host.lock), so that the
	# remount starts one that finds the leftovers below
	for ((i = 0; i < 200; i++)); do
		flock -n "$T/nvm/host.lock" true && break
		sleep 0.05
	done
	head -c 1000 "$T/hdd/l2/big1" >"$T/nvm/objects/tmp.crash1"
	# a file no start has opened yet, so the index cannot know it
	head -c 7000 /dev/urandom >"$T/hdd/l1/fresh"
	c_obj=$T/nvm/objects/$(sha256sum <"$T/hdd/l1/fresh" | cut -d' ' -f1)
	cp "$T/hdd/l1/fresh" "$c_obj"
	mount_tier || return 1
	[ ! -e "$T/nvm/objects/tmp.crash1" ] || { echo "temp file left"; return 1; }
	[ ! -e "$c_obj" ] || { echo "uncommitted object kept"; return 1; }
	served_from fresh "$T/hdd/l1/fresh" || return 1
	for name in "$T"/nvm/objects/*; do
		[ -e "$name" ] || continue
		[ "$(sha256sum <"$name" | cut -d' ' -f1)" = "$(basename "$name")" ] || { echo "partial object $name"; return 1; }
	done
	for i in $(seq 8); do cmp "$MNT/big$i" "$T/hdd/l2/big$i" || return 1; done
	contents_identical
}

config_file_enables_tiering() {
	umount_tier || return 1
	printf 'nvm = %s\nhdd = %s\nhost_idle = 0\n' "$T/nvm" "$T/hdd" >"$T/nlayerfs.conf"
	"$NLAYERFS" nlayerfs "$MNT" -o "lowerdir=$T/hdd/l1:$T/hdd/l2,config=$T/nlayerfs.conf" || return 1
	"$CTL" status --raw "$MNT" | grep -q "^layer 0 .* hdd " && contents_identical
}

corrupt_pool_refused() {
	local out
	umount_tier || return 1
	dd if=/dev/urandom of="$T/nvm/tier.index" bs=4096 count=4 conv=notrunc 2>/dev/null
	if out=$("$NLAYERFS" nlayerfs "$MNT" -o "lowerdir=$T/hdd/l1,nvm=$T/nvm" 2>&1); then
		echo "mounted on a broken pool"
		return 1
	fi
	echo "$out"
	! is_mounted "$MNT" && echo "$out" | grep -q "tier.index"
}

# ---- main ----

if [ "$(id -u)" != 0 ]; then SKIP="needs root"
elif [ ! -c /dev/fuse ]; then SKIP="no /dev/fuse"
elif [ ! -x "$NLAYERFS" ] || [ ! -x "$CTL" ]; then
	echo "not ok 1 - the daemon and nlayerfsctl exist in $BUILD"; echo "1..1"; exit 1
fi
T=$(mktemp -d /tmp/nl-G-tier-XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
MNT=$T/mnt
mkdir -p "$T/hdd/l1/dir" "$T/hdd/l2" "$T/nvm" "$MNT"
head -c 30000 /dev/urandom >"$T/hdd/l1/a"
head -c 20000 /dev/urandom >"$T/hdd/l1/b"
chmod 640 "$T/hdd/l1/b" && chown 1234:5678 "$T/hdd/l1/b" && touch -d 2020-01-01 "$T/hdd/l1/b"
head -c 10000 /dev/urandom >"$T/hdd/l1/c"
head -c 40000 /dev/urandom >"$T/hdd/l1/d"
head -c 5000 /dev/urandom >"$T/hdd/l1/dir/e"
head -c 8000 /dev/urandom >"$T/hdd/l1/x"
cp "$T/hdd/l1/x" "$T/hdd/l2/y"

check "a traced start promotes, the queue drains" traced_start
check "exactly the opened files have NVM objects" start_promotes_exactly_hot
check "NVM bytes accounted in status" bytes_accounted
check "identical files in two layers share one object" one_object_for_twins
check "contents identical through the mount" contents_identical
check "remount: index intact" remount_keeps_index
check "remount: promoted files read from NVM, others from the layer" reads_from_nvm
check "fstat of an open promoted file, also after unlink, shows the file's attributes" promoted_fstat_after_unlink
check "trace start and stop through the control socket" trace_start_stop
check "control channel: not in the tree, root only" control_channel_private
check "status: a summary by default, key/value lines with --raw" status_summary
check "budget too small: coldest evicted, never over budget" budget_evicts_coldest
check "evict all by hand" evict_by_hand
check "hot list export and import" hotlist_round_trip
check "kill -9 during promotions: remount reads original bytes" kill_during_promotion
check "config= file turns tiering on" config_file_enables_tiering
check "a corrupt pool refuses the mount with a clear error" corrupt_pool_refused
if [ "$SAN" = 1 ] && [ -s "$T/san.log" ] && grep -q "Sanitizer" "$T/san.log"; then
	not_ok "no sanitizer reports" "$(cat "$T/san.log")"
fi
echo "1..$N"
[ "$FAILED" = 0 ]
