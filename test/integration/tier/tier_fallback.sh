# SPDX-License-Identifier: GPL-2.0-or-later
# A tiered mount whose tier service dies and cannot be started again (its
# index is broken, so every new service refuses to start) keeps serving
# every file from its layers: reads and writes go on with no error, and
# nlayerfsctl status says the mount is served without tiering for now.
# Once the index is repaired, a new service takes the mount back and the
# status shows it; everything ends at unmount.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
nl_init
CTL=$NLBUILD/nlayerfsctl

host_of() { "$CTL" status --raw "$1" 2>/dev/null | awk '$1 == "host_pid" { print $2 }'; }
tiering_off() { "$CTL" status --raw "$1" 2>/dev/null | grep -qx 'tiering off'; }
fail() { echo "$*" >>"$T/fail"; }

# Under the sanitizers the mount program stays in the foreground as the
# keeper; the servers and services it starts keep its standard error.
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
	mkdir -p "$T/nvm" "$T/hdd/l1" "$T/hdd/l2/dir" "$T/u" "$T/w" "$T/m"
	for i in $(seq 0 3); do head -c $((512 * 1024 + i)) /dev/urandom >"$T/hdd/l2/big$i"; done
	for i in $(seq 0 19); do echo "file $i" >"$T/hdd/l2/dir/f$i"; done
	seq 1 100000 >"$T/hdd/l1/lines"
	printf 'nvm = %s\nhdd = %s\nhost_idle = 1\ntrace_quiet = 1\n' "$T/nvm" "$T/hdd" >"$T/nl.conf"
	freeze_lowers
	mount_tiered "$T/m" "lowerdir=$T/hdd/l1:$T/hdd/l2,upperdir=$T/u,workdir=$T/w,config=$T/nl.conf" ||
		SKIP_ALL="mount failed"
fi
: >"$T/fail"

# Every file of the layers read and checked, a directory walked, a file
# written and renamed, again and again until told to stop.
workload() {
	local n=0 i
	while [ ! -e "$T/stop" ]; do
		i=$((n % 4))
		cmp -s "$T/hdd/l2/big$i" "$T/m/big$i" || fail "read big$i"
		[ "$(cat "$T/m/dir/f$((n % 20))")" = "file $((n % 20))" ] || fail "read f$((n % 20))"
		cmp -s "$T/hdd/l1/lines" "$T/m/lines" || fail "read lines"
		[ "$(ls "$T/m/dir" | wc -l)" -ge 20 ] || fail "ls dir"
		echo "written $n" >"$T/m/dir/.t" && mv "$T/m/dir/.t" "$T/m/dir/w$n" || fail "write w$n"
		n=$((n + 1))
	done
	echo "$n" >"$T/n"
}

start_workload() {
	rm -f "$T/stop"
	workload 2>>"$T/errs" &
	WL=$!
}

stop_workload() {
	touch "$T/stop"
	wait "$WL"
	[ -s "$T/fail" ] && { sort "$T/fail" | uniq -c | head; head "$T/errs"; return 1; }
	return 0
}

# The service is killed with an empty file where its index was: every
# service started after it refuses that index.
break_service() {
	local old i
	old=$(host_of "$T/m")
	[ -n "$old" ] || { echo "no service"; return 1; }
	mv "$T/nvm/tier.index" "$T/nvm/tier.index.good" && : >"$T/nvm/tier.index" || return 1
	start_workload
	kill -9 "$old"
	for ((i = 0; i < 300; i++)); do
		tiering_off "$T/m" && break
		sleep 0.05
	done
	tiering_off "$T/m" || { "$CTL" status --raw "$T/m"; return 1; }
	"$CTL" status "$T/m" | grep -q "tiering off for now" || { "$CTL" status "$T/m"; return 1; }
}
check "a service that cannot start: the status says the mount is served without tiering" \
	break_service

# Some rounds of the workload while no service serves the mount.
served_without() {
	local n0 i
	for ((i = 0; i < 20; i++)); do
		[ -n "$(host_of "$T/m")" ] && { echo "a service came back"; return 1; }
		sleep 0.1
	done
	for i in 0 1 2 3; do cmp "$T/hdd/l2/big$i" "$T/m/big$i" || return 1; done
	cmp "$T/hdd/l1/lines" "$T/m/lines" && [ ! -s "$T/fail" ] ||
		{ sort "$T/fail" | uniq -c | head; return 1; }
	[ ! -s "$T/nvm/tier.index" ] || { echo "the broken index was changed"; return 1; }
}
check "without a service, every file reads right and writes work, with no error" served_without

# The index repaired: a new service takes the mount back, the workload
# still running.
repaired() {
	local i new
	mv "$T/nvm/tier.index.good" "$T/nvm/tier.index" || return 1
	for ((i = 0; i < 300; i++)); do
		new=$(host_of "$T/m")
		[ -n "$new" ] && break
		sleep 0.05
	done
	[ -n "$new" ] || { echo "no service took the mount back"; "$CTL" status --raw "$T/m"; return 1; }
	! tiering_off "$T/m" || return 1
	eq "$(tr -d '\0' </proc/"$new"/comm)" nlayerfs-host "comm of $new" || return 1
	stop_workload
}
check "the cause repaired: a new service serves the mount again, no request failed" repaired

written() {
	local i n
	n=$(cat "$T/n")
	[ "$n" -gt 0 ] || return 1
	for ((i = 0; i < n; i++)); do
		[ "$(cat "$T/m/dir/w$i")" = "written $i" ] || { echo "w$i"; return 1; }
	done
	for i in 0 1 2 3; do cmp "$T/hdd/l2/big$i" "$T/m/big$i" || return 1; done
}
check "every file written reads back, every layer file reads right" written

all_gone() {
	local i
	fusermount3 -u "$T/m" || return 1
	for ((i = 0; i < 200; i++)); do
		pgrep -f "nlayerfs.*config=$T/nl.conf" >/dev/null || return 0
		sleep 0.1
	done
	pgrep -a -f "config=$T/nl.conf"
	return 1
}
check "after unmount the keeper and the service exit" all_gone

san_clean() {
	! grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$T/san.log" ||
		{ head -40 "$T/san.log"; return 1; }
}
[ "$SAN" != 1 ] || check "no sanitizer report from the keeper, its servers and the services" san_clean

check_lowers_unchanged
nl_done
