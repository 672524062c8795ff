#!/usr/bin/env bash
# hookbox benchmarks: medians of at least 200 runs each, side by side.
#
#   scripts/bench.sh            run every section
#   BENCH_RUNS=500 scripts/bench.sh
#
# Each section is a function printing "label: median X.XX ms" lines. Timing uses
# `hyperfine -N` (no shell in between) when installed, else a loop over `date +%s%N`.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."

RUNS=${BENCH_RUNS:-200}

# The median wall time of RUNS runs of "$@", in milliseconds.
median_ms() {
  if command -v hyperfine >/dev/null 2>&1; then
    local json errors
    json=$(mktemp)
    errors=$(mktemp)
    # Outlier warnings go to $errors; they are shown only when the run fails.
    if ! hyperfine -N --style none --warmup 10 --runs "$RUNS" --export-json "$json" \
      -- "$(printf '%q ' "$@")" >/dev/null 2>"$errors"; then
      cat "$errors" >&2
      rm -f "$json" "$errors"
      return 1
    fi
    jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$json"
    rm -f "$json" "$errors"
  else
    local i start end times=()
    for ((i = 0; i < RUNS; i++)); do
      start=$(date +%s%N)
      "$@" >/dev/null
      end=$(date +%s%N)
      times+=($((end - start)))
    done
    printf '%s\n' "${times[@]}" | sort -n |
      awk '{ t[NR] = $1 } END { m = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2; printf "%.2f\n", m / 1e6 }'
  fi
}

# Internal: `bench.sh __median CMD...`, so a section can time a command inside a namespace it
# sets up first (the script is re-executed there).
if [ "${1:-}" = __median ]; then
  shift
  median_ms "$@"
  exit 0
fi

# The hookbox binary to benchmark: $HOOKBOX, else the release build, else the debug build.
hookbox_binary() {
  if [ -n "${HOOKBOX:-}" ]; then
    echo "$HOOKBOX"
  elif [ -x target/release/hookbox ]; then
    echo "$PWD/target/release/hookbox"
  else
    cargo build -q >&2
    echo "$PWD/target/debug/hookbox"
  fi
}

# crun and runc running the OCI bundle equivalent to `hookbox sandbox-run -- /bin/true` over
# a 1-layer overlay (`hookbox export-bundle` of the same spec), as root and rootless.
#
# Debian's crun 1.8.1 refuses this cgroup-hybrid host (the cgroup2 mount carries hugetlb)
# even with --cgroup-manager=disabled, so crun runs in a private mount namespace with a tmpfs
# over /sys/fs/cgroup/unified; the timing loop runs inside that namespace, so its setup is
# not counted. Rootless, that namespace needs `unshare -Urm`, in which uid 65534 is root: the
# crun bundle is exported there with --uid-map 0:0:1 --gid-map 0:0:1. runc runs the bundles
# unchanged (rootless: the bundle exported by uid 65534 itself).
bench_oci() {
  local hookbox dir nobody=()
  hookbox=$(hookbox_binary)
  dir=$(mktemp -d /tmp/hookbox-bench-oci.XXXXXX)
  chmod 755 "$dir"
  cp "$hookbox" "$dir/hookbox"
  cp "$SELF" "$dir/bench.sh"
  chmod 755 "$dir/hookbox" "$dir/bench.sh"
  local cgroupfs='mount -t tmpfs none /sys/fs/cgroup/unified'
  local have_crun=0 have_runc=0
  command -v crun >/dev/null 2>&1 && have_crun=1
  command -v runc >/dev/null 2>&1 && have_runc=1
  [ "$have_crun$have_runc" = 00 ] && { echo "bench_oci: neither crun nor runc is installed" >&2; return 1; }

  echo "== OCI runtimes: /bin/true in the hookbox-equivalent bundle, 1 layer, median of $RUNS runs"
  if [ "$(id -u)" = 0 ]; then
    # As root: the bundle maps hook root to the hookbox id range, as sandbox-run does.
    mkdir -p "$dir/root/lower" "$dir/root/upper" "$dir/root/state"
    echo layer > "$dir/root/lower/file"
    "$hookbox" export-bundle --lower "$dir/root/lower" --upper "$dir/root/upper" \
      "$dir/root/bundle" -- /bin/true >/dev/null
    if [ $have_crun = 1 ]; then
      unshare -m sh -c "$cgroupfs && crun --cgroup-manager=disabled --root $dir/root/state run -b $dir/root/bundle check"
      printf 'crun run, root:      median %s ms\n' "$(unshare -m sh -c "$cgroupfs && exec $dir/bench.sh __median crun --cgroup-manager=disabled --root $dir/root/state run -b $dir/root/bundle bench")"
    fi
    if [ $have_runc = 1 ]; then
      runc --root "$dir/root/state" run -b "$dir/root/bundle" check
      printf 'runc run, root:      median %s ms\n' "$(BENCH_RUNS=$RUNS "$dir/bench.sh" __median runc --root "$dir/root/state" run -b "$dir/root/bundle" bench)"
    fi
    nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
  fi
  # Rootless: as uid 65534 when run as root, else as the caller.
  local rootless="$dir/rootless"
  mkdir -p "$rootless"
  [ ${#nobody[@]} -gt 0 ] && chown 65534:65534 "$rootless"
  "${nobody[@]}" env HOME="$rootless" XDG_RUNTIME_DIR="$rootless/xdg" BENCH_RUNS="$RUNS" sh -c "
    set -e
    cd $rootless
    mkdir -p lower upper state xdg && echo layer > lower/file
    if [ $have_crun = 1 ]; then
      unshare -Urm sh -c '$dir/hookbox export-bundle --lower lower --upper upper \
          --uid-map 0:0:1 --gid-map 0:0:1 crun-bundle -- /bin/true >/dev/null &&
        $cgroupfs && crun --cgroup-manager=disabled --root $rootless/state run -b crun-bundle check &&
        printf \"crun run, rootless:  median %s ms\n\" \"\$($dir/bench.sh __median crun --cgroup-manager=disabled --root $rootless/state run -b $rootless/crun-bundle bench)\"'
    fi
    if [ $have_runc = 1 ]; then
      $dir/hookbox export-bundle --lower lower --upper upper runc-bundle -- /bin/true >/dev/null
      runc --root $rootless/state run -b runc-bundle check
      printf 'runc run, rootless:  median %s ms\n' \"\$($dir/bench.sh __median runc --root $rootless/state run -b $rootless/runc-bundle bench)\"
    fi
  "
  chmod -R u+rwX "$dir" 2>/dev/null || true
  rm -rf "$dir"
}

main() {
  bench_oci
}

main "$@"
