#!/usr/bin/env bash
# Runs the graphile-worker peer benchmark and prints its one JSON line.
#   bash bench/graphile/run.sh [ADMIN_URL] [bench.mjs options…]
# ADMIN_URL names a server and an existing database to connect to for
# CREATE/DROP DATABASE; the bench works in a fresh database of its own.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
url="${1:-postgres://root@127.0.0.1:5432/test}"
shift || true

cd "$here"
# Install exactly the locked versions, once; npm's own output would get mixed
# into the JSON line on stdout, so it goes to stderr.
if [ ! -d node_modules ]; then
  npm ci --silent --no-audit --no-fund 1>&2
fi

exec node bench.mjs --database "$url" "$@"
