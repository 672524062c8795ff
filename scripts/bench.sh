#!/usr/bin/env bash
# hookbox benchmarks: medians of at least 200 runs each, side by side.
#
#   scripts/bench.sh                      run every section
#   scripts/bench.sh bench_sandbox        run one section
#   BENCH_RUNS=500 scripts/bench.sh
#
# Sections record their medians in FIG[...]; the summary at the end prints every ratio
# against the tool a user would otherwise use, measured side by side in the same run.
#
# Each section is a function printing "label: median X.XX ms" lines. Timing uses
# `hyperfine -N` (no shell in between) when installed, else a loop over `date +%s%N`.
set -euo pipefail
SELF=$(realpath "$0")
cd "$(dirname "$SELF")/.."

RUNS=${BENCH_RUNS:-200}

# The median wall time of RUNS runs of "$@", in milliseconds. BENCH_PREPARE, when set, is a
# command run (untimed) before each run; BENCH_WARMUP sets the untimed warm-up runs (10).
median_ms() {
  if command -v hyperfine >/dev/null 2>&1; then
    local json errors
    json=$(mktemp)
    errors=$(mktemp)
    # Outlier warnings go to $errors; they are shown only when the run fails.
    local prepare=()
    [ -n "${BENCH_PREPARE:-}" ] && prepare=(--prepare "$BENCH_PREPARE")
    if ! hyperfine -N --style none --warmup "${BENCH_WARMUP:-10}" --runs "$RUNS" "${prepare[@]}" \
      --export-json "$json" -- "$(printf '%q ' "$@")" >/dev/null 2>"$errors"; then
      cat "$errors" >&2
      rm -f "$json" "$errors"
      return 1
    fi
    jq -r '.results[0].median * 1000 | . * 100 | round / 100' "$json"
    rm -f "$json" "$errors"
  else
    local i start end times=()
    for ((i = 0; i < RUNS; i++)); do
      [ -n "${BENCH_PREPARE:-}" ] && sh -c "$BENCH_PREPARE" >/dev/null
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

# Internal: `bench.sh __git_commits TREES DIR`, the git side of bench_merge from nothing (see
# git_commits; defined below, so dispatched at the end).

# Where release builds land: .cargo/config.toml names the target (static linking).
release_dir() {
  echo "$PWD/target/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}/release"
}

# The hookbox binary to benchmark: $HOOKBOX, else a fresh release build.
hookbox_binary() {
  if [ -n "${HOOKBOX:-}" ]; then
    echo "$HOOKBOX"
  else
    cargo build --release -q >&2
    echo "$(release_dir)/hookbox"
  fi
}

declare -A FIG=()

# Installs the comparison tools from Debian packages when they are missing.
ensure_tools() {
  local missing=()
  command -v hyperfine >/dev/null 2>&1 || missing+=(hyperfine)
  command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
  command -v crun >/dev/null 2>&1 || missing+=(crun)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The medians of RUNS runs of each command (one shell-quoted command line per argument), in
# milliseconds, one per line. With hyperfine, the runs are split into BENCH_ROUNDS (default 5)
# hyperfine invocations that each time every command, so a change in the machine's load
# during the benchmark affects all commands alike; the median is over all runs of a command.
medians_ms() {
  if command -v hyperfine >/dev/null 2>&1; then
    local rounds=${BENCH_ROUNDS:-5} round jsons=() errors
    errors=$(mktemp)
    for ((round = 0; round < rounds; round++)); do
      jsons+=("$(mktemp)")
      if ! hyperfine -N --style none --warmup 3 --runs $(((RUNS + rounds - 1) / rounds)) \
        --export-json "${jsons[-1]}" -- "$@" >/dev/null 2>"$errors"; then
        cat "$errors" >&2
        rm -f "${jsons[@]}" "$errors"
        return 1
      fi
    done
    jq -rs '[range(0; .[0].results | length) as $i | [.[].results[$i].times[]] | sort
      | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end]
      | .[] | . * 1000 | . * 100 | round / 100' "${jsons[@]}"
    rm -f "${jsons[@]}" "$errors"
  else
    local command
    for command in "$@"; do eval "median_ms $command"; done
  fi
}

# Sandbox start-up: `sandbox-run /bin/true` over 1 and 50 layers, against bubblewrap with the
# same namespaces and `unshare -Urmpf --mount-proc` as the floor, timed side by side
# (medians_ms).
#
# Every overlay mount makes overlayfs create three directories in the work dir (work/, and
# work/incompat/volatile/ for `volatile`). On a filesystem that discards freed blocks
# synchronously (ext4 without a journal mounted with `discard`, as this VM's root is) removing
# a directory can block for milliseconds, so hookbox renames work/ aside after a run and the
# next run removes it while its sandbox starts. The run is also timed with its upper and work
# dirs on a tmpfs (/dev/shm), which isolates hookbox's own cost; the rmdir figures show the
# filesystem's; `hookbox --version` is the cost of executing the binary at all (sandbox-run
# executes it twice: the runner and the helper).
bench_sandbox() {
  local hookbox dir shm
  hookbox=$(hookbox_binary)
  dir=$(mktemp -d /tmp/hookbox-bench-XXXXXX)
  shm=$(mktemp -d /dev/shm/hookbox-bench-XXXXXX)
  chmod 755 "$dir" "$shm"
  mkdir -p "$dir/one/l0" "$dir/up1" "$dir/up50" "$dir/w1" "$dir/w50" "$shm/up1" "$shm/w1"
  echo x >"$dir/one/l0/file"
  local fifty=()
  for i in $(seq 0 49); do
    mkdir -p "$dir/fifty/l$i"
    echo "$i" >"$dir/fifty/l$i/f$i"
    fifty+=(--lower "$dir/fifty/l$i")
  done
  local q=(printf '%q ')
  local commands=(
    "unshare -Urmpf --mount-proc /bin/true"
    "bwrap --unshare-all --ro-bind /usr /usr --ro-bind /etc /etc --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp /bin/true"
    "$("${q[@]}" "$hookbox" sandbox-run --upper "$dir/up1" --work "$dir/w1" --lower "$dir/one/l0" -- /bin/true)"
    "$("${q[@]}" "$hookbox" sandbox-run --upper "$dir/up50" --work "$dir/w50" "${fifty[@]}" -- /bin/true)"
    "$("${q[@]}" "$hookbox" sandbox-run --upper "$shm/up1" --work "$shm/w1" --lower "$dir/one/l0" -- /bin/true)"
    "$("${q[@]}" "$hookbox" --version)"
  )
  # The filesystems' own cost, timed afterwards: each of these frees an inode in the bench
  # dir's block group, and interleaved with the sandbox runs they would slow every inode
  # allocation of the ext4 upper's overlay mounts (see settle_fs) that they are meant to
  # explain.
  local diagnostics=(
    "$("${q[@]}" sh -c "mkdir '$dir/d' && rmdir '$dir/d'")"
    "$("${q[@]}" sh -c "mkdir '$shm/d' && rmdir '$shm/d'")"
  )
  echo "== sandbox start-up: /bin/true, median of $RUNS runs each, side by side in ${BENCH_ROUNDS:-5} rounds (uid $(id -u), load $(cut -d' ' -f1-3 /proc/loadavg))"
  local medians
  mapfile -t medians < <(medians_ms "${commands[@]}")
  mapfile -t -O ${#medians[@]} medians < <(medians_ms "${diagnostics[@]}")
  [ ${#medians[@]} = $((${#commands[@]} + ${#diagnostics[@]})) ] ||
    { echo "bench_sandbox: timing failed" >&2; return 1; }
  FIG[unshare]=${medians[0]} FIG[bwrap]=${medians[1]} FIG[sandbox1]=${medians[2]}
  FIG[sandbox50]=${medians[3]} FIG[sandbox1_shm]=${medians[4]} FIG[version]=${medians[5]}
  FIG[rmdir]=${medians[6]} FIG[rmdir_shm]=${medians[7]}
  printf '%-46s median %s ms\n' "unshare -Urmpf --mount-proc (floor)" "${FIG[unshare]}" bwrap "${FIG[bwrap]}" \
    "hookbox sandbox-run 1 layer" "${FIG[sandbox1]}" "hookbox sandbox-run 50 layers" "${FIG[sandbox50]}" \
    "hookbox sandbox-run 1 layer, upper on tmpfs" "${FIG[sandbox1_shm]}" \
    "hookbox --version (executing the binary)" "${FIG[version]}" \
    "sh -c 'mkdir d && rmdir d' in $(dirname "$dir")" "${FIG[rmdir]}" \
    "sh -c 'mkdir d && rmdir d' in /dev/shm" "${FIG[rmdir_shm]}"
  echo "(load after: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo "sandbox-run 1 layer, upper on tmpfs / bwrap:   $(ratio "${FIG[sandbox1_shm]}" "${FIG[bwrap]}")   (target <= 1.0x)"
  echo "sandbox-run 1 layer, upper on tmpfs / unshare: $(ratio "${FIG[sandbox1_shm]}" "${FIG[unshare]}")   (target <= 1.5x)"
  chmod -R u+rwX "$dir" "$shm" 2>/dev/null || true
  rm -rf "$dir" "$shm"
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
      FIG[crun_root]=$(unshare -m sh -c "$cgroupfs && exec $dir/bench.sh __median crun --cgroup-manager=disabled --root $dir/root/state run -b $dir/root/bundle bench")
      printf 'crun run, root:      median %s ms\n' "${FIG[crun_root]}"
    fi
    if [ $have_runc = 1 ]; then
      runc --root "$dir/root/state" run -b "$dir/root/bundle" check
      FIG[runc_root]=$(BENCH_RUNS=$RUNS "$dir/bench.sh" __median runc --root "$dir/root/state" run -b "$dir/root/bundle" bench)
      printf 'runc run, root:      median %s ms\n' "${FIG[runc_root]}"
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

# Ingest (hashing and durability included) against GNU `tar xzf` of the same archives into a
# fresh directory: a ~50 MB charm of ~1,000 files and a charm of ~20,000 small files.
bench_ingest() {
  local BENCH_DIR="$PWD/target/bench" RUNS="${BENCH_INGEST_RUNS:-5}"
  mkdir -p "$BENCH_DIR"
  local big="$BENCH_DIR/charm-50mb.tar.gz" small="$BENCH_DIR/charm-20k.tar.gz"
  if [ ! -f "$big" ] || [ ! -f "$small" ]; then
    echo "bench_ingest: generating inputs (once) in $BENCH_DIR"
    python3 - "$BENCH_DIR" <<'PY'
import os, random, sys, tarfile, io
out = sys.argv[1]
rng = random.Random(42)
words = [''.join(rng.choice('abcdefghijklmnopqrstuvwxyz_') for _ in range(rng.randint(2, 10))) for _ in range(2000)]
def text(n):
    parts, size = [], 0
    while size < n:
        line = '    ' * rng.randint(0, 3) + ' '.join(rng.choice(words) for _ in range(rng.randint(3, 12))) + '\n'
        parts.append(line); size += len(line)
    return ''.join(parts).encode()[:n]
def build(path, files):
    tmp = path + '.tmp'
    with tarfile.open(tmp, 'w:gz', compresslevel=6) as tar:
        def add(name, data, mode=0o644):
            info = tarfile.TarInfo(name); info.size = len(data); info.mode = mode; info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
        add('metadata.yaml', b'name: bench\nsummary: benchmark charm\n')
        add('hooks/install', b'#!/bin/sh\necho install\n', 0o755)
        for name, data in files():
            add(name, data)
    os.replace(tmp, path)
def big():
    # ~1,000 files, ~50 MB: two thirds Python-like text, one third binary (wheels, .so).
    for i in range(1000):
        d = f'venv/lib/pkg{i % 40}'
        if i % 3 == 0:
            yield f'{d}/blob{i}.so', rng.randbytes(rng.randint(20_000, 80_000))
        else:
            yield f'{d}/mod{i}.py', text(rng.randint(30_000, 50_000))
def small():
    for i in range(20_000):
        yield f'lib/d{i % 200}/f{i}.py', text(rng.randint(200, 3_000))
build(os.path.join(out, 'charm-50mb.tar.gz'), big)
build(os.path.join(out, 'charm-20k.tar.gz'), small)
PY
  fi
  local hookbox
  hookbox=$(hookbox_binary)
  local scratch="$BENCH_DIR/scratch"
  rm -rf "$scratch" && mkdir -p "$scratch"
  # Runs alternate (tar, ingest, tar, ...), each into a directory never used before, with a
  # sync before each so neither pays for the other's writeback (ingest's syncfs would), and
  # nothing is deleted until the end (ext4 makes creating inodes right after deleting many
  # slower, which would punish whichever command runs second).
  python3 - "$hookbox" "$scratch" "$RUNS" "$big" "$small" <<'PY'
import os, statistics, subprocess, sys, time
hookbox, scratch, runs, archives = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
print(f"\n{'archive':<22} {'size':>9} {'tar xzf':>9} {'ingest':>9} {'ratio':>7}")
for archive in archives:
    times = {'tar': [], 'ingest': []}
    for run in range(runs + 1):  # the first round warms the page cache and is not counted
        for name in ('tar', 'ingest'):
            target = os.path.join(scratch, f"{name}-{os.path.basename(archive)}-{run}")
            if name == 'tar':
                os.mkdir(target)
                cmd = ['tar', 'xzf', archive, '-C', target]
            else:
                cmd = [hookbox, '--root', target, 'ingest', archive]
            subprocess.run(['sync'], check=True)
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            elapsed = time.perf_counter() - start
            if run > 0:
                times[name].append(elapsed)
    tar, ingest = statistics.median(times['tar']), statistics.median(times['ingest'])
    size = os.path.getsize(archive) / 1e6
    print(f"{os.path.basename(archive):<22} {size:7.1f}MB {tar*1000:7.0f}ms {ingest*1000:7.0f}ms {ingest/tar:6.2f}x")
PY
  chmod -R u+w "$scratch" 2>/dev/null || true
  rm -rf "$scratch"
  echo "(medians of $RUNS interleaved runs; ingest includes sha256 of every file, the canonical"
  echo " digest and one syncfs before the rename; tar xzf does no fsync)"
}

# Units, end to end through the CLI (state, sandbox, tools, commit, journal):
# (a) `hookbox run UNIT HOOK` of a hook that exits 0, against bubblewrap running /bin/true
#     (target <= 2.0x);
# (b) the commit of a hook that changes one file, in a 20,000-file charm against a 10-file
#     charm (target: the same within 10%);
# (c) the 1,000th hook on one unit against the 10th (target <= 1.2x; squash keeps the stack
#     bounded);
# (d) 100 units of one charm: one copy in the store, the units' disk is their layers only;
#     hooks per second for deploying them.
# BENCH_HOOKS (default 1000) and BENCH_UNITS (default 100) shrink (c) and (d) for a smoke run.
bench_units() {
  local hookbox dir hooks units
  hookbox=$(hookbox_binary)
  hooks=${BENCH_HOOKS:-1000}
  units=${BENCH_UNITS:-100}
  dir=$(mktemp -d /var/tmp/hookbox-bench-units-XXXXXX)
  chmod 755 "$dir"
  local hb=("$hookbox" --root "$dir/state")
  mkcharm() { # name files
    local c="$dir/$1"
    mkdir -p "$c/hooks"
    printf 'name: %s\nsummary: bench\ndescription: bench\n' "$1" >"$c/metadata.yaml"
    printf '#!/bin/sh\nexit 0\n' >"$c/hooks/update-status"
    printf '#!/bin/sh\necho "$JUJU_CONTEXT_ID" > written\n' >"$c/hooks/config-changed"
    printf '#!/bin/sh\ndate +%%s%%N > written\n' >"$c/hooks/start"
    chmod 755 "$c"/hooks/*
    if [ "$2" -gt 0 ]; then
      mkdir -p "$c/files"
      (cd "$c/files" && seq 1 "$2" | awk '{ d = int($1 / 1000); printf "%d\n", d }' | sort -u | xargs mkdir -p &&
        seq 1 "$2" | awk '{ printf "%d/f%d\n", int($1 / 1000), $1 }' | while read -r f; do echo "$f" >"$f"; done)
    fi
    chmod -R a+rX "$c"
  }
  mkcharm small 10
  mkcharm big 20000
  echo "== units, end to end through the CLI, median of $RUNS runs (uid $(id -u), load $(cut -d' ' -f1-3 /proc/loadavg))"
  "${hb[@]}" deploy "$dir/small" small >/dev/null
  "${hb[@]}" deploy "$dir/big" big >/dev/null
  # (a) side by side with bubblewrap, interleaved in rounds (medians_ms).
  local q=(printf '%q ') pair
  mapfile -t pair < <(medians_ms \
    "bwrap --unshare-all --ro-bind /usr /usr --ro-bind /etc /etc --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp /bin/true" \
    "$("${q[@]}" "${hb[@]}" run small/0 update-status)")
  [ ${#pair[@]} = 2 ] || { echo "bench_units: timing failed" >&2; return 1; }
  FIG[bwrap_units]=${pair[0]} FIG[run_exit0]=${pair[1]}
  # start writes one file per run: a one-file commit.
  FIG[commit_small]=$(median_ms "${hb[@]}" run small/0 start)
  FIG[commit_big]=$(median_ms "${hb[@]}" run big/0 start)
  printf '%-44s median %s ms\n' "bwrap /bin/true" "${FIG[bwrap_units]}" \
    "hookbox run UNIT update-status (exit 0)" "${FIG[run_exit0]}" \
    "hookbox run, one-file commit, 10-file charm" "${FIG[commit_small]}" \
    "hookbox run, one-file commit, 20000-file charm" "${FIG[commit_big]}"

  # (c) the hook number N on one unit against the 10th: long/0 runs N-10 hooks untimed,
  # then its hooks N-10..N+11 are timed interleaved with the hooks 5..15 of two fresh units
  # of the same charm (22 runs each side, medians). Interleaved, both sides see the same
  # filesystem: on ext4 without a journal each inode allocation scans the inodes freed in
  # the last seconds, so a side timed right after a burst of hooks pays for the burst.
  "${hb[@]}" deploy "$dir/small" long >/dev/null
  local i u start end early=() late=()
  for ((i = 5; i < hooks - 10; i++)); do
    "${hb[@]}" run long/0 start >/dev/null 2>&1
  done
  "${hb[@]}" deploy "$dir/small" young --units 2 >/dev/null
  timed_start() {
    local start end
    start=$(date +%s%N)
    "${hb[@]}" run "$1" start >/dev/null 2>&1
    end=$(date +%s%N)
    echo $((end - start))
  }
  for ((i = 5; i <= 15; i++)); do
    for u in young/0 young/1; do
      late+=("$(timed_start long/0)")
      early+=("$(timed_start "$u")")
    done
  done
  med() { printf '%s\n' "$@" | sort -n | awk '{ t[NR] = $1 } END { printf "%.2f\n", t[int((NR + 1) / 2)] / 1e6 }'; }
  FIG[hook10]=$(med "${early[@]}")
  FIG[hookN]=$(med "${late[@]}")
  printf '%-44s median %s ms\n' "hook ~10 on one unit" "${FIG[hook10]}" "hook ~$hooks on one unit" "${FIG[hookN]}"
  echo "layers of long/0 after $hooks hooks: $("${hb[@]}" status long/0 --json | jq '.applications.long.units["long/0"].layers')"

  # (d) many units of one charm.
  start=$(date +%s%N)
  "${hb[@]}" deploy "$dir/small" many --units "$units" >/dev/null
  end=$(date +%s%N)
  local secs ran
  secs=$(awk -v n=$((end - start)) 'BEGIN { printf "%.2f", n / 1e9 }')
  ran=$(for ((i = 0; i < units; i++)); do "${hb[@]}" history "many/$i" --json | jq length; done | awk '{ s += $1 } END { print s }')
  FIG[units_hps]=$(awk -v r="$ran" -v s="$secs" 'BEGIN { printf "%.1f", r / s }')
  echo "deploy $units units: $ran hooks in ${secs}s = ${FIG[units_hps]} hooks/s ($(nproc) CPUs)"
  echo "charm store copies of 'small': $(grep -l '"name": *"small"' "$dir"/state/charms/*/charm.json | wc -l)"
  echo "charm base size: $(du -sb "$dir/state/charms" | cut -f1) bytes (all charms); units of 'many' on disk: $(du -sb "$dir"/state/units/many-* | awk '{ s += $1 } END { print s }') bytes"
  echo "layer bytes of 'many' (apparent size of the files hooks wrote): $(find "$dir"/state/units/many-*/layers -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')"
  echo "load after bench_units: $(cut -d' ' -f1-3 /proc/loadavg)"
  rm -rf "$dir"
}

# Upgrade merge (issue 5): a unit with 1,000 runtime files over a 20,000-file charm, three-way
# merged onto a new charm revision, against `git merge` of the same three trees committed to a
# git repository (what the original Juju deployer did).
#
# The trees: 200 directories of 100 files (~200 bytes each) plus metadata.yaml; the new charm
# changes 500 files, adds 200 and deletes 100; the runtime layer (an overlay upper, whiteouts
# included) adds 800 files, rewrites 200 charm files the new charm left alone and deletes 20.
# No conflict, so both tools do the whole merge.
#
# hookbox: examples/merge_bench (release), the library path `hookbox upgrade` will take: both
# bases' listings from the store (the listing.bin ingest cached, digest-checked), flatten the
# runtime layer, merge, materialise the new layer (hard links, fsyncs) in a fresh directory.
# git: only `git merge` is timed (the deployer's repository is ready: before each run, untimed,
# `git reset --hard` to the runtime commit); the total with the three commits and the
# checkout of the charm dir is timed too, from the same trees.
bench_merge() {
  local BENCH_DIR="$PWD/target/bench/merge" RUNS="${BENCH_MERGE_RUNS:-7}"
  local hookbox
  hookbox=$(hookbox_binary)
  cargo build --release -q --example merge_bench >&2
  local merge_bench
  merge_bench="$(release_dir)/examples/merge_bench"
  if [ ! -f "$BENCH_DIR/ready" ]; then
    echo "bench_merge: generating the trees (once) in $BENCH_DIR"
    chmod -R u+rwX "$BENCH_DIR" 2>/dev/null || true
    rm -rf "$BENCH_DIR" && mkdir -p "$BENCH_DIR"
    python3 - "$BENCH_DIR" <<'PY'
import os, shutil, stat, sys
out = sys.argv[1]
old, new, layer, view = (os.path.join(out, n) for n in ("old", "new", "layer", "view"))
def content(seed):
    return (seed + "\n") * (200 // (len(seed) + 1) + 1)
def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
for root in (old,):
    write(f"{root}/metadata.yaml", "name: bench\nsummary: merge benchmark\n")
    for d in range(200):
        for f in range(100):
            write(f"{root}/d{d:03}/f{f:03}", content(f"{d}-{f}"))
shutil.copytree(old, new)
shutil.copytree(old, view)
for i in range(500):
    write(f"{new}/d{i // 5:03}/f{i % 5:03}", content(f"new {i}"))
for i in range(200):
    write(f"{new}/d{i // 2:03}/added{i % 2}", content(f"add {i}"))
for i in range(100):
    os.remove(f"{new}/d{i:03}/f007")
os.makedirs(layer)
for i in range(800):
    d = f"state{i // 50}" if i < 400 else f"d{100 + (i - 400) // 4:03}"
    for root in (layer, view):
        write(f"{root}/{d}/runtime{i}", content(f"rt {i}"))
for i in range(200):
    rel = f"d{100 + i // 2:03}/f{50 + i % 2:03}"
    for root in (layer, view):
        write(f"{root}/{rel}", content(f"mine {i}"))
for i in range(20):
    rel = f"d{100 + i:03}/f090"
    os.mknod(f"{layer}/{rel}", stat.S_IFCHR | 0o000, 0)
    os.remove(f"{view}/{rel}")
PY
    "$hookbox" --root "$BENCH_DIR/root" ingest --json "$BENCH_DIR/old" | jq -r .digest >"$BENCH_DIR/old.digest"
    "$hookbox" --root "$BENCH_DIR/root" ingest --json "$BENCH_DIR/new" | jq -r .digest >"$BENCH_DIR/new.digest"
    # The deployer's repository: base, charm and runtime commits, the charm dir checked out at
    # the runtime commit.
    git_commits "$BENCH_DIR" "$BENCH_DIR/git" >"$BENCH_DIR/repo.path"
    touch "$BENCH_DIR/ready"
  fi
  local old new repo scratch="$BENCH_DIR/scratch"
  repo=$(cat "$BENCH_DIR/repo.path")
  old=$(cat "$BENCH_DIR/old.digest")
  new=$(cat "$BENCH_DIR/new.digest")
  chmod -R u+rwX "$scratch" 2>/dev/null || true
  rm -rf "$scratch" && mkdir -p "$scratch/layers" "$scratch/git"
  echo "== upgrade merge: 20,000-file charm, 1,000 runtime files, median of $RUNS runs (load $(cut -d' ' -f1-3 /proc/loadavg))"
  # One run first: checks the merge succeeds and shows where its time goes.
  echo "hookbox steps (one run): $("$merge_bench" "$BENCH_DIR/root" "$old" "$new" "$scratch/layers" "$BENCH_DIR/layer")"
  FIG[merge_hookbox]=$(BENCH_WARMUP=1 median_ms "$merge_bench" "$BENCH_DIR/root" "$old" "$new" "$scratch/layers" "$BENCH_DIR/layer")
  FIG[merge_git]=$(BENCH_WARMUP=1 BENCH_PREPARE="git -C $repo reset -q --hard runtime-state" \
    median_ms git -C "$repo" -c user.name=bench -c user.email=bench@localhost merge -q --no-edit charm)
  git -C "$repo" reset -q --hard runtime-state
  FIG[merge_git_total]=$(BENCH_WARMUP=1 median_ms "$SELF" __git_commits "$BENCH_DIR" "$scratch/git")
  printf '%-58s median %s ms\n' \
    "hookbox merge (listings + flatten + merge + materialise)" "${FIG[merge_hookbox]}" \
    "git merge (repository ready)" "${FIG[merge_git]}" \
    "git: three commits + checkout + merge" "${FIG[merge_git_total]}"
  echo "hookbox / git merge:             $(ratio "${FIG[merge_hookbox]}" "${FIG[merge_git]}")   (target <= 0.5x)"
  echo "hookbox / git with its commits:  $(ratio "${FIG[merge_hookbox]}" "${FIG[merge_git_total]}")"
  bench_upgrade_cli "$hookbox" "$old" "$new"
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
  chmod -R u+rwX "$scratch" 2>/dev/null || true
  rm -rf "$scratch"
}

# The end-to-end figure of bench_merge: `hookbox upgrade` of the same scenario through the
# CLI (app lock, compatibility check, settings, unit lock and recovery, journal steps, the
# merge, the layer swap, and upgrade-charm and config-changed, which the bench charm lacks:
# two sandbox starts that find no handler), and `hookbox preview-upgrade`. The unit is
# deployed once; its runtime layer is the bench's layer, put in place as a committed layer
# (the journal names it); every timed run starts from a copy of that unit (not timed).
bench_upgrade_cli() {
  local hookbox="$1" old="$2" new="$3" root="$BENCH_DIR/root" tpl="$BENCH_DIR/upgrade-template"
  if [ ! -d "$tpl" ]; then
    "$hookbox" --root "$root" remove bench >/dev/null 2>&1 || true
    "$hookbox" --root "$root" deploy "$old" bench >/dev/null
    local unit="$root/units/bench-0" id=00000001-0000be0c
    mkdir -p "$unit/layers"
    cp -a "$BENCH_DIR/layer" "$unit/layers/$id"
    jq --arg id "$id" '.layers = [$id] | .next_sequence = 2' "$unit/state.json" >"$unit/state.json.new"
    mv "$unit/state.json.new" "$unit/state.json"
    mkdir -p "$tpl/apps"
    cp -a "$unit" "$tpl/bench-0"
    cp -a "$root/apps/bench.json" "$tpl/apps/"
  fi
  local reset="rm -rf $root/units/bench-0 && cp -a $tpl/bench-0 $root/units/ && cp -a $tpl/apps/bench.json $root/apps/"
  sh -c "$reset"
  echo "hookbox upgrade (one run): $("$hookbox" --root "$root" upgrade bench "$new" --json | jq -c '[.outcome, .units[0].outcome, [.units[0].runs[].outcome]]')"
  sh -c "$reset"
  # hyperfine -N runs --prepare without a shell too.
  FIG[upgrade_cli]=$(BENCH_WARMUP=1 BENCH_PREPARE="sh -c '$reset'" median_ms "$hookbox" --root "$root" upgrade bench "$new")
  FIG[preview_cli]=$(BENCH_WARMUP=1 BENCH_PREPARE="sh -c '$reset'" median_ms sh -c "'$hookbox' --root '$root' preview-upgrade bench '$new' >/dev/null")
  sh -c "$reset"
  printf '%-58s median %s ms\n' \
    "hookbox upgrade (CLI, end to end, 2 hook sandboxes)" "${FIG[upgrade_cli]}" \
    "hookbox preview-upgrade (CLI)" "${FIG[preview_cli]}"
  echo "hookbox upgrade CLI / git merge: $(ratio "${FIG[upgrade_cli]}" "${FIG[merge_git]}")"
  echo "preview-upgrade CLI / git merge: $(ratio "${FIG[preview_cli]}" "${FIG[merge_git]}")"
}

# The git side of bench_merge: a repository in a new directory under $2 with the trees of $1
# committed as base, charm and runtime (the deployer's charm dir checked out at runtime),
# then, when $3 is `merge`, `git merge charm`. Prints the repository.
git_commits() {
  local trees="$1" repo
  mkdir -p "$2"
  repo=$(mktemp -d "$2/repo-XXXXXX")
  local git=(git -C "$repo" -c user.name=bench -c user.email=bench@localhost -c init.defaultBranch=base)
  "${git[@]}" init -q
  "${git[@]}" --work-tree="$trees/old" add -A
  "${git[@]}" commit -qm base
  "${git[@]}" branch charm
  "${git[@]}" symbolic-ref HEAD refs/heads/charm
  "${git[@]}" --work-tree="$trees/new" add -A
  "${git[@]}" commit -qm charm
  "${git[@]}" symbolic-ref HEAD refs/heads/base
  "${git[@]}" reset -q base
  "${git[@]}" checkout -qb runtime
  "${git[@]}" --work-tree="$trees/view" add -A
  "${git[@]}" commit -qm runtime
  "${git[@]}" tag runtime-state
  "${git[@]}" checkout -q -f runtime
  if [ "${3:-}" = merge ]; then
    "${git[@]}" merge -q --no-edit charm
  fi
  echo "$repo"
}

# x/y to two decimals, or "n/a" when either is missing.
ratio() {
  if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'
  else
    echo n/a
  fi
}

summary() {
  echo "== ratios (same run)"
  if [ -n "${FIG[sandbox1]:-}" ]; then
    echo "sandbox-run 1 layer / bwrap:          $(ratio "${FIG[sandbox1]}" "${FIG[bwrap]}")   (target <= 1.0x)"
    echo "sandbox-run 50 layers / bwrap:        $(ratio "${FIG[sandbox50]}" "${FIG[bwrap]}")   (target <= 1.0x)"
    echo "sandbox-run 1 layer / unshare floor:  $(ratio "${FIG[sandbox1]}" "${FIG[unshare]}")   (target <= 1.5x)"
    echo "sandbox-run 1 layer / crun (root):    $(ratio "${FIG[sandbox1]}" "${FIG[crun_root]:-}")   (target <= 0.5x)"
    echo "sandbox-run 1 layer / runc (root):    $(ratio "${FIG[sandbox1]}" "${FIG[runc_root]:-}")"
  fi
  if [ -n "${FIG[run_exit0]:-}" ]; then
    echo "hookbox run (exit 0) / bwrap:          $(ratio "${FIG[run_exit0]}" "${FIG[bwrap_units]}")   (target <= 2.0x)"
    echo "one-file commit, 20000 / 10 files:     $(ratio "${FIG[commit_big]}" "${FIG[commit_small]}")   (target <= 1.10x)"
    echo "hook ~1000 / hook ~10:                 $(ratio "${FIG[hookN]}" "${FIG[hook10]}")   (target <= 1.2x)"
    echo "deploy of many units:                  ${FIG[units_hps]} hooks/s"
  fi
  if [ -n "${FIG[merge_hookbox]:-}" ]; then
    echo "upgrade merge / git merge:            $(ratio "${FIG[merge_hookbox]}" "${FIG[merge_git]}")   (target <= 0.5x)"
    echo "upgrade merge / git with its commits: $(ratio "${FIG[merge_hookbox]}" "${FIG[merge_git_total]}")"
    echo "hookbox upgrade CLI / git merge:      $(ratio "${FIG[upgrade_cli]:-}" "${FIG[merge_git]}")"
    echo "preview-upgrade CLI / git merge:      $(ratio "${FIG[preview_cli]:-}" "${FIG[merge_git]}")"
  fi
}

# Lets the filesystem forget what was deleted before a section runs (by the previous section,
# or by whatever ran before the script).
# On ext4 without a journal (this VM's root) every inode allocation skips, one by one, the
# inodes of its block group freed in the last 60 s (360 s while their inode table block is
# dirty): a section that follows one that created and deleted thousands of files (ingest's
# 20,000-file trees, a thousand hook runs, a test suite) would pay for them. `sync` cleans
# the blocks, then 65 s let the deletions age out. BENCH_SETTLE=N waits N s; 0 skips.
# Then, for up to 5 more minutes, until the 1-minute load average is below 1: the kernel
# finishes a thousand sandboxes' worth of network namespace teardown and discards on its
# worker threads well after they exit, and a section measured meanwhile (right after a test
# suite, say) ran up to 1.4x slower here.
settle_fs() {
  [ "${BENCH_SETTLE:-65}" = 0 ] && return
  sync
  echo "(settling the filesystem for ${BENCH_SETTLE:-65}s: deletions of the previous section age out)"
  sleep "${BENCH_SETTLE:-65}"
  local waited=0
  while [ $waited -lt 300 ] && awk '{ exit !($1 >= 1.0) }' /proc/loadavg; do
    sleep 5
    waited=$((waited + 5))
  done
  if [ $waited -gt 0 ]; then
    echo "(waited ${waited}s more for the kernel's deferred work: load $(cut -d' ' -f1 /proc/loadavg))"
  fi
}

main() {
  if [ "${1:-}" = __git_commits ]; then
    git_commits "$2" "$3" merge >/dev/null
    return
  fi
  ensure_tools
  local sections=("$@")
  [ ${#sections[@]} -gt 0 ] || sections=(bench_sandbox bench_oci bench_ingest bench_units bench_merge)
  for section in "${sections[@]}"; do
    settle_fs
    "$section"
  done
  summary
}

main "$@"
