# SPDX-License-Identifier: GPL-2.0-or-later
# Tiered mounts outlive their tier service: the service killed with SIGKILL
# again and again while two containers' mounts (one with an upper layer) are
# read, walked and written, and a file is held open: no operation fails,
# every file reads back its bytes, each mount's keeper hands it to the next
# service, and everything ends at unmount.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
nl_init
CTL=$NLBUILD/nlayerfsctl
KILLS=${NLAYERFS_SURVIVE_KILLS:-5}

host_of() { "$CTL" status --raw "$1" 2>/dev/null | awk '$1 == "host_pid" { print $2 }'; }
fail() { echo "$*" >>"$T/fail"; }

# mount_tiered DIR OPTS: under the sanitizers the mount program stays in
# the foreground as the keeper, and the services it starts keep its
# standard error: their reports go to one log, checked at the end.
mount_tiered() {
	local i
	if [ "$SAN" = 1 ]; then
		"$NLAYERFS" nlayerfs "$1" -f -o "$2" 2>>"$T/san.log" &
		for ((i = 0; i < 150; i++)); do is_mounted "$1" && break; sleep 0.1; done
	else
		"$NLAYERFS" nlayerfs "$1" -o "$2" || return 1
	fi
	MOUNTED+=("$1")
	is_mounted "$1"
}

if [ -z "$SKIP_ALL" ]; then
	mkdir -p "$T/nvm" "$T/hdd/l1" "$T/hdd/l2/dir" "$T/u" "$T/w" "$T/m1" "$T/m2"
	for i in $(seq 0 7); do head -c $((1024 * 1024 + i)) /dev/urandom >"$T/hdd/l2/big$i"; done
	for i in $(seq 0 49); do echo "file $i" >"$T/hdd/l2/dir/f$i"; done
	seq 1 100000 >"$T/hdd/l1/lines"
	printf 'nvm = %s\nhdd = %s\nhost_idle = 1\ntrace_quiet = 1\n' "$T/nvm" "$T/hdd" >"$T/nl.conf"
	LOWERS=$T/hdd/l1:$T/hdd/l2
	freeze_lowers
	mount_tiered "$T/m1" "lowerdir=$LOWERS,upperdir=$T/u,workdir=$T/w,config=$T/nl.conf" &&
		mount_tiered "$T/m2" "lowerdir=$LOWERS,config=$T/nl.conf" || SKIP_ALL="mount failed"
fi
: >"$T/fail"

workload() {
	local m=$1 n=0 i
	while [ ! -e "$T/stop" ]; do
		i=$((n % 8))
		cmp -s "$T/hdd/l2/big$i" "$m/big$i" || fail "$m: read big$i"
		[ "$(cat "$m/dir/f$((n % 50))")" = "file $((n % 50))" ] || fail "$m: read f$((n % 50))"
		[ "$(ls "$m/dir" | wc -l)" -ge 50 ] || fail "$m: ls dir"
		if [ "$m" = "$T/m1" ]; then
			echo "written $n" >"$m/dir/.t" && mv "$m/dir/.t" "$m/dir/w$n" || fail "write w$n"
		fi
		n=$((n + 1))
	done
	echo "$n" >"$T/n-$(basename "$m")"
}

holder() {
	local want=1 line
	exec 7<"$T/m2/lines"
	while [ ! -e "$T/stop" ]; do
		read -r line <&7 || { fail "read held"; break; }
		[ "$line" = "$want" ] || { fail "held line $line, want $want"; break; }
		want=$((want + 1))
		sleep 0.01
	done
	exec 7<&-
}

survive() {
	local k old new i pids=()
	rm -f "$T/stop"
	workload "$T/m1" 2>>"$T/errs" & pids+=($!)
	workload "$T/m2" 2>>"$T/errs" & pids+=($!)
	holder 2>>"$T/errs" & pids+=($!)
	for ((k = 1; k <= KILLS; k++)); do
		sleep "0.$((RANDOM % 8))$((RANDOM % 10))"
		old=$(host_of "$T/m1")
		[ -n "$old" ] || { fail "no service before kill $k"; break; }
		kill -9 "$old"
		for ((i = 0; i < 300; i++)); do
			new=$(host_of "$T/m1")
			[ -n "$new" ] && [ "$new" != "$old" ] && [ "$(host_of "$T/m2")" = "$new" ] && break
			sleep 0.05
		done
		[ -n "$new" ] && [ "$new" != "$old" ] || fail "no new service after kill $k"
	done
	touch "$T/stop"
	wait "${pids[@]}"
	[ -s "$T/fail" ] && { sort "$T/fail" | uniq -c | head; head "$T/errs"; return 1; }
	return 0
}
check "reads, walks, writes and an open file through $KILLS SIGKILLs of the tier service" survive

written() {
	local i n
	n=$(cat "$T/n-m1")
	for ((i = 0; i < n; i++)); do
		[ "$(cat "$T/m1/dir/w$i")" = "written $i" ] || { echo "w$i"; return 1; }
	done
}
check "every file written reads back" written

one_service() {
	local h
	h=$(host_of "$T/m1")
	eq "$(host_of "$T/m2")" "$h" "service of m2" || return 1
	[ "$(pgrep -f "nlayerfs.*config=$T/nl.conf" | xargs -r -I{} cat /proc/{}/comm |
		grep -c '^nlayerfs-host$')" = 1 ] || { pgrep -a -f "config=$T/nl.conf"; return 1; }
}
check "both mounts are served by one new service" one_service

# A service a keeper starts is the installed binary, run again (an
# upgrade replaces the file at that path).
from_installed_binary() {
	local h
	h=$(host_of "$T/m1")
	eq "$(readlink "/proc/$h/exe")" "$(readlink -f "$NLAYERFS")" "service binary"
}
check "the new service runs the installed binary" from_installed_binary

restarted() {
	local old new
	old=$(host_of "$T/m1")
	new=$("$CTL" restart "$T/m1" | awk '$1 == "host_pid" { print $2 }')
	[ -n "$new" ] && [ "$new" != "$old" ] || { echo "restart: '$new' after '$old'"; return 1; }
	eq "$(host_of "$T/m2")" "$new" "service of m2" || return 1
	cmp "$T/m2/big3" "$T/hdd/l2/big3" && cmp "$T/m1/big4" "$T/hdd/l2/big4"
}
check "nlayerfsctl restart hands every mount of the service to a new one" restarted

counted() {
	local m
	for m in "$T/m1" "$T/m2"; do
		eq "$("$CTL" status --raw "$m" | awk '$1 == "replaced" { print $2 }')" $((KILLS + 1)) \
			"takeovers of $m" || return 1
	done
}
check "the status of each mount counts its takeovers" counted

all_gone() {
	local h i
	h=$(host_of "$T/m1")
	fusermount3 -u "$T/m1" && fusermount3 -u "$T/m2" || return 1
	for ((i = 0; i < 200; i++)); do
		pgrep -f "nlayerfs.*config=$T/nl.conf" >/dev/null || return 0
		sleep 0.1
	done
	pgrep -a -f "config=$T/nl.conf"
	return 1
}
check "after unmount the keepers and the service exit" all_gone

san_clean() {
	! grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$T/san.log" ||
		{ head -40 "$T/san.log"; return 1; }
}
[ "$SAN" != 1 ] || check "no sanitizer report from the keepers and the services" san_clean

check_lowers_unchanged
nl_done
