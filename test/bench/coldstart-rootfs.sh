#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the layered Debian root filesystem the cold-start and import
# benchmarks use, once, in DEST (default /var/tmp/nl-coldstart/layers):
#
#   l0  base     debootstrap --variant=minbase bookworm
#   l1  python3  apt-get update && apt-get install python3 (the runtime)
#   l2  extras   apt-get install ca-certificates tzdata
#   l3  cleanup  rm -rf docs, man pages, apt lists and caches (whiteouts, opaque dirs)
#   l4  app      /app/start.py and its configuration
#
# Each layer above l0 is the upper dir of a kernel overlay mount over the
# layers below while its step runs in a chroot, so it holds exactly the diff,
# whiteouts and opaque directories included, in the overlay format.
#
#   test/bench/coldstart-rootfs.sh [DEST]
# A complete tree has DEST/stamp; delete DEST to build it again.
set -eu
dest=${1:-/var/tmp/nl-coldstart/layers}
stamp_text="nl-coldstart layers 2: minbase bookworm, python3, ca-certificates tzdata, cleanup, app"
mirror=${NL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ -f "$dest/stamp" ] && [ "$(cat "$dest/stamp")" = "$stamp_text" ]; then
	echo "coldstart-rootfs: $dest is complete"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "coldstart-rootfs: needs root" >&2; exit 1; }
command -v debootstrap >/dev/null ||
	{ echo "coldstart-rootfs: debootstrap is missing (apt-get install -y debootstrap)" >&2; exit 1; }

scratch="$dest.scratch"
mnt="$scratch/merged"
cleanup() {
	for m in "$mnt/dev" "$mnt/proc" "$mnt"; do
		mountpoint -q "$m" 2>/dev/null && umount "$m"
	done
	rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
rm -rf "$dest" "$scratch"
mkdir -p "$dest" "$scratch"

echo "coldstart-rootfs: l0 base (debootstrap minbase bookworm from $mirror)"
debootstrap --variant=minbase bookworm "$dest/l0" "$mirror" >"$dest.debootstrap.log" 2>&1 ||
	{ echo "coldstart-rootfs: debootstrap failed, see $dest.debootstrap.log" >&2; exit 1; }

# run_layer K CMD: runs CMD in a chroot of l0..l(K-1) with lK as the upper dir.
run_layer() {
	local k=$1 lower="" j
	shift
	for ((j = k - 1; j >= 0; j--)); do lower="$lower${lower:+:}$dest/l$j"; done
	mkdir -p "$dest/l$k" "$scratch/work$k" "$mnt"
	mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dest/l$k,workdir=$scratch/work$k" "$mnt"
	mount -t proc proc "$mnt/proc"
	mount --bind /dev "$mnt/dev"
	cp /etc/resolv.conf "$scratch/resolv.conf"
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LANG=C \
		chroot "$mnt" /bin/sh -ec "$*"
	umount "$mnt/dev" "$mnt/proc" "$mnt"
	rm -rf "$scratch/work$k"
}

# The kernel marks its upper dirs with origin, impure and uuid attributes
# that mean nothing in a lower layer; images carry only whiteouts and opaque.
strip_overlay_xattrs() {
	local f a
	find "$1" -path "$1/l0" -prune -o -print0 |
		while IFS= read -r -d '' f; do
			for a in trusted.overlay.origin trusted.overlay.impure trusted.overlay.uuid; do
				setfattr -h -x "$a" "$f" 2>/dev/null || true
			done
		done
}

echo "coldstart-rootfs: l1 python3"
run_layer 1 "apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 >/dev/null && apt-get clean"
echo "coldstart-rootfs: l2 ca-certificates tzdata"
run_layer 2 "apt-get install -y -qq --no-install-recommends ca-certificates tzdata >/dev/null && apt-get clean"
echo "coldstart-rootfs: l3 cleanup"
run_layer 3 "rm -rf /usr/share/doc/* /usr/share/man /usr/share/info /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log"
echo "coldstart-rootfs: l4 app"
mkdir -p "$dest/l4/app"
cat >"$dest/l4/app/start.py" <<'APP'
# The application: imports a few stdlib modules, reads its configuration,
# builds a small in-memory database and a mail message, and reports.
import email.message
import http.server
import json
import sqlite3
import zoneinfo

with open("/app/config.json") as f:
    conf = json.load(f)
db = sqlite3.connect(":memory:")
db.execute("create table t (k text, v int)")
db.executemany("insert into t values (?, ?)", [(k, len(k)) for k in conf["names"]])
msg = email.message.EmailMessage()
msg["Subject"] = conf["subject"]
msg.set_content(json.dumps(conf))
tz = zoneinfo.ZoneInfo(conf["zone"])
print("app started:", db.execute("select count(*) from t").fetchone()[0], "rows,",
      len(msg.as_bytes()), "bytes of mail,", tz.key, http.server.__name__)
APP
cat >"$dest/l4/app/config.json" <<'CONF'
{"names": ["alpha", "beta", "gamma", "delta"], "subject": "started", "zone": "Europe/Paris"}
CONF
strip_overlay_xattrs "$dest"
echo "$stamp_text" >"$dest/stamp"
sync
for k in 0 1 2 3 4; do
	echo "coldstart-rootfs: l$k $(du -sm "$dest/l$k" | cut -f1) MiB, $(find "$dest/l$k" | wc -l) entries"
done
