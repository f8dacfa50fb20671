# SPDX-License-Identifier: GPL-2.0-or-later
# The daemon killed with SIGKILL at random moments while containers copy
# files up, rename and write: after a remount every file reads back either
# what it was or what was written, never a mix, and the lower layers are
# untouched.
. "$(dirname "$0")/../lib.sh"
nl_init

KILLS=${NLAYERFS_FAULT_KILLS:-8}
SURVIVED=0

new_layers 1
for i in $(seq 0 15); do
	head -c $((2 * 1024 * 1024 + i * 4096)) /dev/urandom >"$D/l1/f$i"
done
mkdir -p "$D/l1/dir"
for i in $(seq 0 31); do echo "small $i" >"$D/l1/dir/s$i"; done
freeze_lowers
mkdir -p "$T/want"
cp -a "$D/l1/." "$T/want/"

daemon_pid() {
	local m=$1
	if [ -n "${SAN_PID[$m]:-}" ]; then echo "${SAN_PID[$m]}"; return; fi
	pgrep -n -f -- "$(basename "$NLAYERFS") .*$m\$"
}

# What the containers do: copy-ups of big lower files (chmod, append),
# small files replaced by rename, directories renamed.
workload() {
	local m=$1 i
	for i in $(seq 0 15); do
		chmod 0600 "$m/f$i" 2>/dev/null
		printf 'appended %s\n' "$i" >>"$m/f$i" 2>/dev/null
	done &
	for i in $(seq 0 31); do
		printf 'new %s\n' "$i" >"$m/dir/.t$i" 2>/dev/null &&
			mv "$m/dir/.t$i" "$m/dir/s$i" 2>/dev/null
	done &
	wait
}

# Every file is whole: the lower bytes, or the lower bytes plus one whole
# appended line; small files the old or the new line.
check_files() {
	local m=$1 i bad=0 n
	for i in $(seq 0 15); do
		n=$(stat -c %s "$T/want/f$i")
		if ! cmp -s -n "$n" "$T/want/f$i" "$m/f$i"; then
			echo "f$i: lower bytes damaged"; bad=1
		fi
		case "$(tail -c +$((n + 1)) "$m/f$i")" in
		""|"appended $i") ;;
		*) echo "f$i: torn append"; bad=1 ;;
		esac
	done
	for i in $(seq 0 31); do
		case "$(cat "$m/dir/s$i" 2>&1)" in
		"small $i"|"new $i") ;;
		*) echo "dir/s$i: '$(cat "$m/dir/s$i" 2>&1)'"; bad=1 ;;
		esac
	done
	return $bad
}

one_kill() {
	local k=$1 pid rc=0
	rm -rf "$U" "$W" && mkdir -p "$U" "$W"
	nl_mount || return 1
	pid=$(daemon_pid "$MNT")
	[ -n "$pid" ] || { echo "no daemon pid"; return 1; }
	workload "$MNT" 2>/dev/null &
	sleep "0.$((RANDOM % 4))$((RANDOM % 10))"
	kill -9 "$pid"
	wait
	while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
	umount -l "$MNT" || { echo "cannot detach the dead mount"; return 1; }
	[ -z "${SAN_PID[$MNT]:-}" ] || unset "SAN_PID[$MNT]"
	nl_mount || { echo "remount after kill $k failed"; return 1; }
	check_files "$MNT" || rc=1
	nl_umount "$MNT" || rc=1
	[ $rc = 1 ] || SURVIVED=$((SURVIVED + 1))
	return $rc
}

for k in $(seq 1 "$KILLS"); do
	check "SIGKILL $k during copy-ups, appends and renames: every file whole after remount" one_kill "$k"
done
# check runs its command in this shell: SURVIVED counts what passed
diag "faults survived: $SURVIVED of $KILLS"
check_lowers_unchanged
nl_done
