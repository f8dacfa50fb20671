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
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-/var/tmp/nl-coldstart/layers}
scratch="$dest.scratch"
tag=coldstart-rootfs
stamp_text="nl-coldstart layers 2: minbase bookworm, python3, ca-certificates tzdata, cleanup, app"
. "$here/rootfs-lib.sh"

if [ -f "$dest/stamp" ] && [ "$(cat "$dest/stamp")" = "$stamp_text" ]; then
	echo "$tag: $dest is complete"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "$tag: needs root" >&2; exit 1; }

rootfs_traps
rm -rf "$dest" "$scratch"
mkdir -p "$dest" "$scratch"
rootfs_base

echo "$tag: l1 python3"
rootfs_layer 1 "apt-get update -qq && apt-get install -y -qq --no-install-recommends python3 >/dev/null && apt-get clean"
echo "$tag: l2 ca-certificates tzdata"
rootfs_layer 2 "apt-get install -y -qq --no-install-recommends ca-certificates tzdata >/dev/null && apt-get clean"
echo "$tag: l3 cleanup"
rootfs_layer 3 "rm -rf /usr/share/doc/* /usr/share/man /usr/share/info /var/lib/apt/lists/* /var/cache/debconf/*-old /var/log/*.log"
echo "$tag: l4 app"
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
rootfs_strip_xattrs
echo "$stamp_text" >"$dest/stamp"
sync
for k in 0 1 2 3 4; do
	echo "coldstart-rootfs: l$k $(du -sm "$dest/l$k" | cut -f1) MiB, $(find "$dest/l$k" | wc -l) entries"
done
