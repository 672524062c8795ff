#!/usr/bin/env bash
# Runs hookbox's whole test suite: unit tests and the integration tests, which run the real
# binary in real sandboxes. Installs the comparison runtimes the tests use when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && ! command -v crun >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq crun; } >/dev/null 2>&1 ||
    echo "test.sh: could not install crun; the export-bundle tests will say so" >&2
fi
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --no-fail-fast "$@"
else
  exec cargo test --no-fail-fast "$@"
fi
