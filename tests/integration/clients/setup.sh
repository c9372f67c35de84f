#!/usr/bin/env bash
# Builds the Go and Node test clients that tests/integration/test_clients.py
# runs, under build/clients; safe to run again (tools/setup calls it).
#   build/clients/gocheck              go build of clients/go (Go's own cache keeps it cheap)
#   build/clients/node/node_modules    npm ci of clients/node, redone only when
#                                      package-lock.json changes (stamp file)
# The C client is a CMake target (build/vecgate_test_cclient).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../.." && pwd)
out=$top/build/clients
log() { printf 'setup clients: %s\n' "$*" >&2; }
mkdir -p "$out"

# Go: the machine's toolchain, never a downloaded one; go.mod and go.sum are
# committed and must not change (-mod=readonly).
if command -v go >/dev/null; then
	(cd "$here/go" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -o "$out/gocheck" .)
else
	log "warning: no Go toolchain; $out/gocheck not built (test_clients.py will fail)"
fi

# Node: node_modules lives in build/clients/node (not in the source tree);
# check.js finds it through NODE_PATH. The stamp is the lock file's hash.
if command -v npm >/dev/null && command -v node >/dev/null; then
	nd=$out/node
	want=$(cat "$here/node/package.json" "$here/node/package-lock.json" | sha256sum | cut -d' ' -f1)
	if [ ! -d "$nd/node_modules" ] || [ "$(cat "$nd/.stamp" 2>/dev/null)" != "$want" ]; then
		log "npm ci (mysql2) in $nd"
		rm -rf "$nd"
		mkdir -p "$nd"
		cp "$here/node/package.json" "$here/node/package-lock.json" "$nd/"
		(cd "$nd" && npm ci --no-audit --no-fund --loglevel=error)
		echo "$want" >"$nd/.stamp"
	fi
else
	log "warning: no node/npm; the Node client is not installed (test_clients.py will fail)"
fi
