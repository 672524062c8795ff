#!/usr/bin/env bash
# Everything a commit must pass: formatting, clippy with warnings denied, the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
scripts/test.sh "$@"
