# SPDX-License-Identifier: GPL-2.0-or-later
# Shared harness of the checkpoint-mount tests (ckpt_*.sh): what they need,
# TAP output, a scratch directory with MNT, DEV and META, and a cleanup of
# the mount and of every daemon of this test. A test sets CKPT_TEST (its
# name, for a skip line) and sources this file.
export LC_ALL=C
SRC=${NLAYERFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
NLBUILD=${NLAYERFS_BUILD:-$SRC/build}
NLAYERFS=${NLAYERFS:-$NLBUILD/nlayerfs}
ZNS=$NLBUILD/nlayerfs-zns
HELPERS=$NLBUILD/test/helpers
SAN=${NLAYERFS_SAN:-0}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

N=0 NFAIL=0 PID=""
ok() { N=$((N + 1)); echo "ok $N - $1"; }
not_ok() { N=$((N + 1)); NFAIL=$((NFAIL + 1)); echo "not ok $N - $1"; shift; printf '%s\n' "$@" | sed 's/^/# /'; }
check() {
	local name=$1 rc
	shift
	"$@" >"$T/check.out" 2>&1 </dev/null
	rc=$?
	if [ $rc = 0 ]; then ok "$name"; else not_ok "$name" "$(cat "$T/check.out")" "(exit $rc)"; fi
}

skip_all() { echo "ok 1 - ${CKPT_TEST:-checkpoint mount} # SKIP $1"; echo "1..1"; exit 0; }
[ "$(id -u)" = 0 ] || skip_all "needs root"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
[ -x "$NLAYERFS" ] && [ -x "$ZNS" ] || { echo "not ok 1 - daemon and nlayerfs-zns built in $NLBUILD"; echo "1..1"; exit 1; }

T=$(mktemp -d /tmp/nl-C-XXXXXX)
MNT=$T/mnt DEV=$T/zdev META=$T/meta
mkdir -p "$MNT"

is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }
# The checkpoint daemons of this test: their meta= lies under $T.
daemons() { pgrep -f -- "meta=$T/"; }

# A crash of the whole daemon: the keeper of the mount ($PID, which would
# start a new server) and every server of this test, with SIGKILL.
kill_daemons() {
	local p
	[ -z "$PID" ] || kill -9 "$PID" 2>/dev/null
	for p in $(daemons); do kill -9 "$p" 2>/dev/null; done
	[ -z "$PID" ] || wait "$PID" 2>/dev/null
	for p in $(daemons); do
		while kill -0 "$p" 2>/dev/null; do sleep 0.02; done
	done
	PID=""
}

cleanup() {
	local p
	is_mounted "$MNT" && { fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"; }
	[ -z "$PID" ] || kill -9 "$PID" 2>/dev/null
	for p in $(daemons); do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
