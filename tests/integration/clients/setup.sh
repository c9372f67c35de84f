#!/usr/bin/env bash
# Builds the Go and Node test clients that tests/integration/test_clients.py
# runs, under build/clients; safe to run again (tools/setup calls it).
#   build/clients/gocheck              go build of clients/go (Go's own cache keeps it cheap)
#   build/clients/node/node_modules    npm ci of clients/node, redone only when
#                                      package-lock.json changes (stamp file)
#   build/clients/java                 MySQL Connector/J (Maven Central) in lib/ and
#                                      javacheck compiled into classes/, redone only
#                                      when pom.xml or Check.java changes (stamp file)
#   build/clients/tidb-vector          the sdist of the pinned tidb-vector from PyPI,
#                                      for its own test suite (test_clients_tidb_vector.py)
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

# Java: Maven copies Connector/J into build/clients/java/lib (from its local
# repository when it has it, so a second build needs no network) and javac
# compiles Check.java beside it. The stamp is the sources' hash.
if command -v mvn >/dev/null && command -v javac >/dev/null; then
	jd=$out/java
	want=$(cat "$here/java/pom.xml" "$here/java/Check.java" | sha256sum | cut -d' ' -f1)
	if [ "$(cat "$jd/.stamp" 2>/dev/null)" != "$want" ]; then
		log "Connector/J and javacheck in $jd"
		rm -rf "$jd/lib" "$jd/classes" "$jd/.stamp"
		mkdir -p "$jd/classes"
		mvn_args=(-q -B -f "$here/java/pom.xml" -Dvecgate.out="$jd" dependency:copy-dependencies
			-DoutputDirectory="$jd/lib")
		mvn -o "${mvn_args[@]}" >/dev/null 2>&1 || mvn "${mvn_args[@]}"
		javac -Xlint:all -Werror --release 17 -encoding UTF-8 -cp "$jd/lib/*" -d "$jd/classes" \
			"$here/java/Check.java"
		echo "$want" >"$jd/.stamp"
	fi
else
	log "warning: no mvn/javac; the Java client is not built (test_clients_java.py will fail)"
fi

# tidb-vector's sdist, for the suite it may ship. Its metadata names version
# 0.0.0 (the version is set at build time), so pip refuses it by version: the
# pinned release's file is named by its address and hash instead.
tv=$out/tidb-vector
tv_file=tidb_vector-0.0.15.tar.gz
tv_url=https://files.pythonhosted.org/packages/b1/55/6247b3b8dd0c0ec05a7b0dd7d4f016d03337d6f089db9cc221a31de1308c/$tv_file
tv_sha=dfd16b31b06f025737f5c7432a08e04265dde8a7c9c67d037e6e694c8125f6f5
if [ ! -f "$tv/$tv_file" ] && [ -x "$top/build/venv/bin/pip" ]; then
	log "tidb-vector sdist in $tv"
	mkdir -p "$tv"
	"$top/build/venv/bin/pip" download -q --disable-pip-version-check --no-deps \
		--no-binary tidb-vector -d "$tv" "tidb-vector @ $tv_url#sha256=$tv_sha" ||
		log "warning: could not download the tidb-vector sdist"
fi
