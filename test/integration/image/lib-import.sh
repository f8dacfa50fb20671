# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by the image import tests (import_*.sh): the importer, TAP output,
# and the prologue. A test sources this and calls import_init, which fails
# when the importer was not built, skips the whole test when a tool that
# builds its images is missing, and makes the scratch directory $D.
set -u
B=${NLAYERFS_BUILD:-build}
SRC=${NLAYERFS_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)}
IMPORT=$B/nlayerfs-import
ROOT=0
[ "$(id -u)" = 0 ] && ROOT=1

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# check NAME CMD...: ok when CMD exits 0; its output is the diagnostic of a failure.
check() {
	local name=$1
	shift
	if "$@" >"$D/check.out" 2>&1; then ok "$name"; else notok "$name"; sed 's/^/# /' "$D/check.out"; fi
}

# import_init NAME WHAT TOOL...: $D=/tmp/nl-I-NAME.XXXXXX once the importer
# exists and every TOOL (needed to build the images of WHAT) is there.
import_init() {
	local name=$1 what=$2 tool
	shift 2
	if [ ! -x "$IMPORT" ]; then
		echo "not ok 1 - nlayerfs-import built ($IMPORT missing)"
		exit 1
	fi
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null; then
			echo "ok 1 - $what # SKIP $tool is needed to build the test images"
			echo "1..1"
			exit 0
		fi
	done
	D=$(mktemp -d "/tmp/nl-I-$name.XXXXXX")
}
