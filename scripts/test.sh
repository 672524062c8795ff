#!/usr/bin/env bash
# Runs hookbox's whole test suite: unit tests and the integration tests, which run the real
# binary in real sandboxes. Installs the OCI runtimes the tests use (crun, runc) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
for tool in crun runc; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "$(id -u)" = 0 ] && [ ${#missing[@]} -gt 0 ]; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 ||
    echo "test.sh: could not install ${missing[*]}; the export-bundle tests will say so" >&2
fi
if cargo nextest --version >/dev/null 2>&1; then
  exec cargo nextest run --no-fail-fast "$@"
else
  exec cargo test --no-fail-fast "$@"
fi
