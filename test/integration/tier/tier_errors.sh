# SPDX-License-Identifier: GPL-2.0-or-later
# Bad input to a tiered mount gets an error that names it, never a signal
# or a hang: an index pool that is empty, cut short or overwritten (as a
# pool whose creation was cut off looks), and a config= that is endless
# (/dev/zero) or a directory. The broken index is left as it was.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

POOL="" OUT=""

# refused WHAT OPTS: the mount fails by itself (no signal, within 20 s)
# with a message naming WHAT, and nothing is mounted.
refused() {
	local what=$1 opts=$2 rc=0
	OUT=$(timeout 20 "$NLAYERFS" nlayerfs "$MNT" -o "lowerdir=$T/l1,$opts" 2>&1) || rc=$?
	echo "exit $rc: $OUT"
	if [ $rc = 0 ]; then nl_umount "$MNT"; echo "mounted"; return 1; fi
	[ $rc -lt 124 ] || { echo "killed by a signal or timed out"; return 1; }
	! is_mounted "$MNT" && grep -qF -- "$what" <<<"$OUT"
}

# The processes of this mount: the mount program and the tier service it
# forked (which keeps the program's command line).
daemon_pids() {
	local p
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -q -- " $MNT\( \|$\)"; then
			echo "${p#/proc/}"
		fi
	done
}

# A good pool with one traced file, then DAMAGE applied to it (once the
# tier service, which closes the pool when it exits, is gone: host_idle=0
# makes it exit at the unmount).
damaged_pool() {
	local pids p
	rm -rf "$T/nvm" && mkdir -p "$T/nvm" || return 1
	nl_mount "nvm=$T/nvm,host_idle=0" && cat "$MNT/f" >/dev/null || return 1
	pids=$(daemon_pids) && [ -n "$pids" ] && nl_umount "$MNT" || return 1
	for p in $pids; do
		while [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; do
			sleep 0.05
		done
	done
	"$@"
	sha256sum "$POOL" >"$T/pool.sum"
}

pool_refused_untouched() {
	refused "$POOL" "nvm=$T/nvm" || return 1
	grep -q "move it away" <<<"$OUT" || return 1
	sha256sum -c --quiet "$T/pool.sum"
}

noise() { dd if=/dev/urandom of="$POOL" bs=4096 seek="$1" count="$2" conv=notrunc 2>/dev/null; }

empty_pool() { damaged_pool truncate -s 0 "$POOL" && pool_refused_untouched; }
short_pool() { damaged_pool truncate -s 1M "$POOL" && pool_refused_untouched; }
lanes_overwritten() { damaged_pool noise 2 16 && pool_refused_untouched; }
heap_overwritten() { damaged_pool noise 256 16 && pool_refused_untouched; }
all_random() { damaged_pool noise 0 2048 && pool_refused_untouched; }

# Moving the broken index away, as the message says, mounts again.
moved_away_mounts() {
	mv "$POOL" "$T/tier.index.broken" && nl_mount "nvm=$T/nvm" && cmp "$MNT/f" "$T/l1/f" &&
		nl_umount "$MNT"
}

config_dev_zero() { refused /dev/zero "config=/dev/zero"; }
config_directory() { refused "$T/confdir" "config=$T/confdir" && grep -q "directory" <<<"$OUT"; }

nl_init
MNT=$T/mnt
POOL=$T/nvm/tier.index
mkdir -p "$T/l1" "$T/nvm" "$T/confdir" "$MNT"
head -c 20000 /dev/urandom >"$T/l1/f"
LOWERS=$T/l1 NOUPPER=1

check_nl "an empty index refuses the mount with its name, untouched" "tiering" empty_pool
check_nl "an index cut short refuses the mount with its name, untouched" "tiering" short_pool
check_nl "an index with overwritten lanes: refused, no signal, untouched" "tiering" lanes_overwritten
check_nl "an index with an overwritten heap: refused, no signal, untouched" "tiering" heap_overwritten
check_nl "an index of random bytes: refused, untouched" "tiering" all_random
check_nl "the broken index moved away: the mount works" "tiering" moved_away_mounts
check_nl "config=/dev/zero: refused with its name, no hang" "config=" config_dev_zero
check_nl "config= naming a directory: refused with its name" "config=" config_directory
nl_done
