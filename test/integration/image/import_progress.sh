#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# nlayerfs-import progress: with stderr not a terminal, one line per stored
# layer (bytes, time and rate of verification and unpacking); nothing
# with -q; on a terminal (script(1) gives one) a status line rewritten in
# place, cleared at the end.
. "$(dirname "$0")/lib-import.sh"
import_init progress "import progress" python3
trap 'rm -rf "$D"' EXIT

mkdir -p "$D/base/usr" "$D/app/app"
head -c 3M /dev/urandom >"$D/base/usr/blob"
echo app >"$D/app/app/name"
python3 "$SRC/test/demo/make-oci" "$D/oci" app:1 "$D/base:ADD rootfs.tar /" \
	"$D/app:COPY app /app"

lines_per_layer() {
	"$IMPORT" --nvm "$D/n1" --hdd "$D/h1" "oci:$D/oci:app:1" >"$D/out" 2>"$D/err" || return 1
	cat "$D/err"
	[ "$(wc -l <"$D/err")" = 2 ] || return 1
	grep -qE '^layer 1/2: 3\.[0-9] MiB verified in [0-9.]+ s \([0-9.]+ MiB/s\), unpacked in [0-9.]+ s \([0-9.]+ MiB/s\)$' "$D/err" &&
		grep -qE '^layer 2/2: 0\.0 MiB verified in .*, unpacked in ' "$D/err"
}
quiet_is_silent() {
	"$IMPORT" -q --nvm "$D/n2" --hdd "$D/h2" "oci:$D/oci:app:1" >"$D/qout" 2>"$D/qerr" || return 1
	cat "$D/qout" "$D/qerr"
	[ ! -s "$D/qout" ] && [ ! -s "$D/qerr" ]
}
present_layers_no_lines() {
	"$IMPORT" --nvm "$D/n1" --hdd "$D/h1" --name again "oci:$D/oci:app:1" >/dev/null 2>"$D/err2" || return 1
	cat "$D/err2"
	[ ! -s "$D/err2" ]
}
terminal_status_line() {
	script -qec "$IMPORT --nvm $D/n3 --hdd $D/h3 oci:$D/oci:app:1" /dev/null >"$D/tty" || return 1
	# the status line is rewritten with CR + erase-line and cleared at the end
	grep -q $'\r\033\[K' "$D/tty" && ! grep -q 'verified in' "$D/tty"
}

check "not a terminal: one progress line per stored layer on stderr" lines_per_layer
check "-q prints nothing at all" quiet_is_silent
check "layers already present print no progress line" present_layers_no_lines
if command -v script >/dev/null; then
	check "a terminal gets a status line rewritten in place, not the log lines" terminal_status_line
else
	skip "a terminal gets a status line" "no script(1)"
fi
echo "1..$n"
