# SPDX-License-Identifier: GPL-2.0-or-later
# Shared harness of the union-mount integration tests.
#
# A test file sources this, calls nl_init, builds layers, mounts with
# nl_mount, reports with ok/not_ok/skip/check, and ends with nl_done.
#
# NLAYERFS_IMPL chooses what is mounted, so that every test can first be
# checked against the reference semantics:
#   nlayerfs       (default) the daemon at $NLAYERFS
#   kernel         mount -t overlay
#   fuse-overlayfs the fuse-overlayfs binary
# Tests of behaviour the kernel does not have call nl_only first.
#
# NLAYERFS_SAN=1: the daemon runs with -f in the background, its stderr
# goes to a log, and the log is checked for sanitizer reports at unmount.

export LC_ALL=C
IMPL=${NLAYERFS_IMPL:-nlayerfs}
SRC=${NLAYERFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
NLBUILD=${NLAYERFS_BUILD:-$SRC/build}
NLAYERFS=${NLAYERFS:-$NLBUILD/nlayerfs}
HELPERS=$NLBUILD/test/helpers
SAN=${NLAYERFS_SAN:-0}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

TESTNUM=0
NFAIL=0
T=""
MNT=""
MOUNTED=()        # mount points we mounted, unmounted at exit
SAN_LOGS=()       # logs of daemons run with -f under the sanitizers
declare -A SAN_PID  # mount point -> pid of its foreground daemon
SKIP_ALL=""       # reason every test is skipped, or empty

ok()     { TESTNUM=$((TESTNUM + 1)); echo "ok $TESTNUM - $1"; }
not_ok() {
	TESTNUM=$((TESTNUM + 1)); NFAIL=$((NFAIL + 1))
	echo "not ok $TESTNUM - $1"
	shift
	local l
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}
skip()   { TESTNUM=$((TESTNUM + 1)); echo "ok $TESTNUM - $1 # SKIP $2"; }
diag()   { printf '%s\n' "$*" | sed 's/^/# /'; }

# check NAME CMD...: run CMD (usually a shell function), ok when it exits 0.
# Its output becomes the diagnostic of a failure.
check() {
	local name=$1 out rc
	shift
	if [ -n "$SKIP_ALL" ]; then skip "$name" "$SKIP_ALL"; return 0; fi
	# run in this shell (not $(...)) so that mounts made by a check are
	# known to the cleanup and to the sanitizer log checks
	"$@" >"$T/check.out" 2>&1 </dev/null
	rc=$?
	out=$(cat "$T/check.out")
	if [ $rc = 0 ]; then ok "$name"; else not_ok "$name" "$out" "(exit $rc)"; fi
}

# nl_only REASON: true when the implementation under test is nlayerfs.
# Otherwise the caller skips: the kernel (and fuse-overlayfs) do not
# have the behaviour the issue asks for, REASON says which.
# NLAYERFS_FORCE_ALL=1 runs them anyway (e.g. to check such a test on the
# kernel mounted with NLAYERFS_KERNEL_OPTS=redirect_dir=on).
nl_only() { [ "$IMPL" = nlayerfs ] || [ "${NLAYERFS_FORCE_ALL:-0}" = 1 ]; }

# check_nl NAME REASON CMD...: a check run only against nlayerfs.
check_nl() {
	local name=$1 why=$2
	shift 2
	if nl_only; then check "$name" "$@"; else skip "$name" "nlayerfs-only: $why"; fi
}

# check_impl "IMPLS" NAME REASON CMD...: a check run only for the listed
# implementations (e.g. "nlayerfs fuse-overlayfs").
check_impl() {
	local impls=" $1 " name=$2 why=$3
	shift 3
	if [[ "$impls" == *" $IMPL "* ]]; then check "$name" "$@"
	else skip "$name" "not read by $IMPL: $why"; fi
}

is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

fs_type_of() { awk -v m="$1" '$5 == m { t = $(NF - 2) } END { print t }' /proc/self/mountinfo; }

nl_cleanup() {
	local m i
	for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
		m=${MOUNTED[$i]}
		is_mounted "$m" || continue
		fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	# tmpfs mounts made by a test under $T
	if [ -n "$T" ]; then
		awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
			while read -r m; do umount -l "$m" 2>/dev/null; done
		rm -rf "$T"
	fi
}

# nl_init: TAP prologue, skip conditions, scratch directory, traps.
nl_init() {
	if [ "$(id -u)" != 0 ]; then
		SKIP_ALL="needs root"
	elif [ ! -c /dev/fuse ] && [ "$IMPL" != kernel ]; then
		SKIP_ALL="no /dev/fuse"
	elif [ "$IMPL" = nlayerfs ] && [ ! -x "$NLAYERFS" ]; then
		# a missing daemon is a failure of the build, not a reason to skip
		echo "not ok 1 - the daemon exists at $NLAYERFS"
		echo "1..1"
		exit 1
	elif [ "$IMPL" = kernel ] && ! grep -qw overlay /proc/filesystems; then
		SKIP_ALL="no overlay filesystem in this kernel"
	elif [ ! -d "$HELPERS" ]; then
		SKIP_ALL="helpers not built in $HELPERS (make helpers)"
	fi
	[ -z "$SKIP_ALL" ] && echo "# implementation under test: $IMPL"
	T=$(mktemp -d /tmp/nl-T-XXXXXX)
	chmod 0755 "$T"   # other users must reach the mount points
	trap nl_cleanup EXIT
	trap 'exit 130' INT TERM
}

# nl_done: unmount everything, final plan, exit status.
nl_done() {
	local m
	for m in "${MOUNTED[@]+"${MOUNTED[@]}"}"; do
		is_mounted "$m" && nl_umount "$m"
	done
	echo "1..$TESTNUM"
	[ "$NFAIL" = 0 ]
	exit
}

# new_layers N: fresh lower layers $T/N/l1..lN (l1 topmost), upper $U,
# workdir $W, mount point $MNT. Sets LOWERS to "l1:l2:...".
SETNO=0
new_layers() {
	local n=$1 i
	SETNO=$((SETNO + 1))
	D=$T/s$SETNO
	mkdir -p "$D/u" "$D/w" "$D/m"
	LOWERS=""
	for ((i = 1; i <= n; i++)); do
		mkdir -p "$D/l$i"
		LOWERS=${LOWERS:+$LOWERS:}$D/l$i
	done
	U=$D/u W=$D/w MNT=$D/m
}

# Lower-layer fingerprint: names, types, modes, owners, sizes, mtimes,
# contents and xattrs. Compared before/after each test file: the union
# must never write into a lower layer.
layer_fingerprint() {
	local d=$1
	(cd "$d" && find . -printf '%p %y %m %U:%G %s %T@ %l\n' | sort &&
		find . -type f -print0 | sort -z | xargs -0r sha256sum &&
		getfattr -R -h -d -m - . 2>/dev/null)
}
ALL_LOWERS=()
LOWER_SUMS=()
# freeze_lowers: remember the fingerprint of every lower of the current set.
# Called again after a deliberate change, it takes the new fingerprint.
freeze_lowers() {
	local l i n
	for l in ${LOWERS//:/ }; do
		n=${#ALL_LOWERS[@]}
		for i in "${!ALL_LOWERS[@]}"; do [ "${ALL_LOWERS[$i]}" != "$l" ] || n=$i; done
		ALL_LOWERS[$n]=$l
		LOWER_SUMS[$n]=$(layer_fingerprint "$l" | sha256sum)
	done
}
lowers_unchanged() {
	local i bad=0
	for i in "${!ALL_LOWERS[@]}"; do
		if [ "$(layer_fingerprint "${ALL_LOWERS[$i]}" | sha256sum)" != "${LOWER_SUMS[$i]}" ]; then
			echo "lower layer changed: ${ALL_LOWERS[$i]}"
			bad=1
		fi
	done
	return $bad
}
check_lowers_unchanged() { check "lower layers unchanged by all of the above" lowers_unchanged; }

# nl_mount [EXTRA_OPTS]: mount $LOWERS/$U/$W on $MNT with the implementation
# under test. NOUPPER=1 mounts read-only without upperdir. Returns non-zero
# (with the reason on stderr) when the mount failed.
nl_mount() {
	local extra=${1:-} opts
	opts=lowerdir=$LOWERS
	[ "${NOUPPER:-0}" = 1 ] || opts=$opts,upperdir=$U,workdir=$W
	[ -z "$extra" ] || opts=$opts,$extra
	impl_mount "$opts" "$MNT"
}

# impl_mount OPTS MOUNTPOINT [IMPL]
impl_mount() {
	local opts=$1 m=$2 impl=${3:-$IMPL} log i
	case $impl in
	kernel)
		mount -t overlay overlay -o "$opts${NLAYERFS_KERNEL_OPTS:+,$NLAYERFS_KERNEL_OPTS}" "$m" || return 1 ;;
	fuse-overlayfs)
		fuse-overlayfs -o "$opts" "$m" || return 1 ;;
	nlayerfs)
		if [ "$SAN" = 1 ]; then
			log=$T/san-$(basename "$(dirname "$m")")-$(basename "$m")-$RANDOM.log
			SAN_LOGS+=("$log")
			"$NLAYERFS" -f -o "$opts" "$m" 2>"$log" &
			SAN_PID[$m]=$!
			for ((i = 0; i < 300; i++)); do
				is_mounted "$m" && break
				kill -0 $! 2>/dev/null || { cat "$log" >&2; return 1; }
				sleep 0.05
			done
			is_mounted "$m" || { echo "not mounted after 15s" >&2; return 1; }
		else
			timeout 30 "$NLAYERFS" -o "$opts" "$m" || return 1
		fi ;;
	*) echo "unknown NLAYERFS_IMPL=$impl" >&2; return 1 ;;
	esac
	MOUNTED+=("$m")
	is_mounted "$m" || { echo "$m is not in mountinfo right after mount returned" >&2; return 1; }
}

# nl_umount [MOUNTPOINT]: unmount; under the sanitizers wait for the daemon
# and fail on any report in its log.
nl_umount() {
	local m=${1:-$MNT} t i log rc=0
	t=$(fs_type_of "$m")
	case $t in
	fuse*) fusermount3 -u "$m" || umount -l "$m" ;;
	*) umount "$m" || umount -l "$m" ;;
	esac
	if [ "$SAN" = 1 ]; then
		# the daemon exits after unmount; wait for it to write its reports
		if [ -n "${SAN_PID[$m]:-}" ]; then
			for ((i = 0; i < 200; i++)); do
				kill -0 "${SAN_PID[$m]}" 2>/dev/null || break
				sleep 0.05
			done
			kill -0 "${SAN_PID[$m]}" 2>/dev/null &&
				not_ok "daemon of $m still running 10 s after unmount" && rc=1
			unset "SAN_PID[$m]"
		fi
		for log in "${SAN_LOGS[@]+"${SAN_LOGS[@]}"}"; do
			if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$log" 2>/dev/null; then
				not_ok "sanitizer report from the daemon ($log)" "$(head -40 "$log")"
				rc=1
				: >"$log"
			fi
		done
	fi
	return $rc
}

# tier_service_pid [MOUNTPOINT]: the pid of the tier service serving a
# tiered mount. Asked of its status (the mount program may stay in the
# foreground under the sanitizers, but the service does the work); else
# the newest process with the mount program's command line, which the
# service keeps since it is forked from it.
tier_service_pid() {
	local m=${1:-$MNT} p i
	for ((i = 0; i < 5; i++)); do
		p=$("$NLBUILD/nlayerfsctl" status --raw "$m" 2>/dev/null |
			awk '$1 == "host_pid" { print $2 }')
		if [ -n "$p" ]; then echo "$p"; return 0; fi
	done
	for p in $(ls -d /proc/[0-9]* | sort -t/ -k3 -n -r); do
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- " $m\( \|\$\)"; then
			echo "${p#/proc/}"
			return 0
		fi
	done
	return 1
}

# Convenience for tests.
H() { "$HELPERS/$@"; }
# try OP ARGS: the errno name of a system call ("OK" on success)
try() { "$HELPERS/nl_try" "$@"; }
expect_errno() {
	local want=$1 got
	shift
	got=$(try "$@")
	[ "$got" = "$want" ] || { echo "$*: got $got, want $want"; return 1; }
}
# same_file_content A B
same_content() { cmp -- "$1" "$2"; }
eq() { [ "$1" = "$2" ] || { echo "${3:-value}: got '$1', want '$2'"; return 1; }; }
