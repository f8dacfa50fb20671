#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the layered Debian root filesystem of the JRE cold-start benchmark
# (test/bench/jre-bench), once, in DEST (default /var/tmp/nl-jre/layers):
#
#   l0  base  debootstrap --variant=minbase bookworm (or a copy of the
#             cold-start benchmark's l0 when that tree is complete)
#   l1  jre   apt-get install --no-install-recommends openjdk-17-jre-headless
#   l2  app   /app/App.class (test/bench/jre-app/App.java compiled on this
#             host with javac --release 17), its properties and XML config
#
# Each layer above l0 is the upper dir of a kernel overlay mount over the
# layers below while its step runs (see rootfs-lib.sh).
#
#   test/bench/jre-rootfs.sh [DEST]
# A complete tree has DEST/stamp; delete DEST to build it again.
# NL_REUSE_L0=DIR takes l0 from DIR/l0 (default /var/tmp/nl-coldstart/layers;
# NL_REUSE_L0= debootstraps).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-/var/tmp/nl-jre/layers}
scratch="$dest.scratch"
tag=jre-rootfs
stamp_text="nl-jre layers 1: minbase bookworm, openjdk-17-jre-headless, app"
. "$here/rootfs-lib.sh"

if [ -f "$dest/stamp" ] && [ "$(cat "$dest/stamp")" = "$stamp_text" ]; then
	echo "$tag: $dest is complete"
	exit 0
fi
[ "$(id -u)" = 0 ] || { echo "$tag: needs root" >&2; exit 1; }
command -v javac >/dev/null ||
	{ echo "$tag: javac is missing (apt-get install -y openjdk-17-jdk-headless)" >&2; exit 1; }

rootfs_traps
rm -rf "$dest" "$scratch"
mkdir -p "$dest" "$scratch"

rootfs_base "${NL_REUSE_L0-/var/tmp/nl-coldstart/layers}"

echo "$tag: l1 openjdk-17-jre-headless"
rootfs_layer 1 "apt-get update -qq && apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless >/dev/null && apt-get clean && rm -rf /var/lib/apt/lists/*"

echo "$tag: l2 app"
mkdir -p "$scratch/classes"
javac --release 17 -d "$scratch/classes" "$here/jre-app/App.java"
rootfs_layer 2 "mkdir -p /app"
cp "$scratch"/classes/*.class "$dest/l2/app/"
cat >"$dest/l2/app/app.properties" <<'PROPS'
name=jre-bench-service
config=/app/config.xml
threads=2
PROPS
cat >"$dest/l2/app/config.xml" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<service name="jre-bench-service">
  <route path="/health"/>
  <route path="/metrics"/>
  <route path="/api/items"/>
  <limits connections="16" timeout="5s"/>
</service>
XML
chmod 0644 "$dest"/l2/app/*
rootfs_strip_xattrs
echo "$stamp_text" >"$dest/stamp"
sync
rootfs_sizes 2
