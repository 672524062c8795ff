#!/usr/bin/env bash
# hookbox benchmarks (release build, hyperfine -N). Each section is a shell function;
# run all with `scripts/bench.sh`, or one with `scripts/bench.sh bench_sandbox`.
# RUNS (default 200) sets the number of measured runs per command.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-200}

build_release() {
  cargo build --release --quiet
  HOOKBOX=$PWD/target/release/hookbox
}

# The median in ms of one hyperfine JSON export.
median_ms() {
  python3 -c 'import json,sys; print("%.2f" % (json.load(open(sys.argv[1]))["results"][0]["median"]*1000))' "$1"
}

# Sandbox start-up: `sandbox-run /bin/true` over 1 and 50 layers, against bubblewrap with the
# same namespaces and `unshare -Urmpf --mount-proc` as the floor. Run as root to measure the
# root (id range) path, or through setpriv as an unprivileged user for the rootless path.
bench_sandbox() {
  build_release
  local dir
  dir=$(mktemp -d /tmp/hookbox-bench-XXXXXX)
  chmod 755 "$dir"
  trap 'rm -rf "$dir"' RETURN
  mkdir -p "$dir/one/l0" "$dir/up1" "$dir/up50"
  echo x >"$dir/one/l0/file"
  local fifty=()
  for i in $(seq 0 49); do
    mkdir -p "$dir/fifty/l$i"
    echo "$i" >"$dir/fifty/l$i/f$i"
    fifty+=(--lower "$dir/fifty/l$i")
  done
  # Fixed work dirs: overlay empties them itself on each mount.
  mkdir -p "$dir/w1" "$dir/w50"
  local sr=(sandbox-run --upper "$dir/up1" --work "$dir/w1" --lower "$dir/one/l0" -- /bin/true)
  local sr50=(sandbox-run --upper "$dir/up50" --work "$dir/w50" "${fifty[@]}" -- /bin/true)
  local bwrap_args="--unshare-all --ro-bind /usr /usr --ro-bind /etc /etc --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp /bin/true"
  local names=("unshare -Urmpf" "bwrap" "hookbox 1 layer" "hookbox 50 layers")
  local cmds=(
    "unshare -Urmpf --mount-proc /bin/true"
    "bwrap $bwrap_args"
    "$HOOKBOX ${sr[*]}"
    "$HOOKBOX ${sr50[*]}"
  )
  local medians=()
  for i in "${!cmds[@]}"; do
    hyperfine -N --warmup 20 --runs "$RUNS" --export-json "$dir/r$i.json" "${cmds[$i]}" >/dev/null
    medians+=("$(median_ms "$dir/r$i.json")")
  done
  echo "sandbox start-up, median of $RUNS runs (uid $(id -u)):"
  for i in "${!cmds[@]}"; do
    printf '  %-20s %7s ms\n' "${names[$i]}" "${medians[$i]}"
  done
  python3 - "${medians[@]}" <<'PY'
import sys
floor, bwrap, one, fifty = map(float, sys.argv[1:])
print(f"  hookbox/bwrap   1 layer {one / bwrap:.2f}x  50 layers {fifty / bwrap:.2f}x  (target <= 1.0x)")
print(f"  hookbox/unshare 1 layer {one / floor:.2f}x  50 layers {fifty / floor:.2f}x  (target <= 1.5x)")
PY
}

if [ $# -gt 0 ]; then
  "$@"
else
  bench_sandbox
fi
