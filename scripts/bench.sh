#!/usr/bin/env bash
# hookbox benchmarks. Each bench_* function prints its figures; main runs them all.
# Needs hyperfine and GNU tar. Inputs are generated once and cached under target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_DIR="$PWD/target/bench"
RUNS="${BENCH_RUNS:-5}"

# Ingest (hashing and durability included) against GNU `tar xzf` of the same archives into a
# fresh directory: a ~50 MB charm of ~1,000 files and a charm of ~20,000 small files.
bench_ingest() {
  command -v hyperfine >/dev/null || { echo "bench_ingest: hyperfine is not installed" >&2; return 1; }
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
  cargo build --release -q
  local hookbox="$PWD/target/release/hookbox" scratch="$BENCH_DIR/scratch"
  mkdir -p "$scratch"
  local clean="chmod -R u+w $scratch/root $scratch/untar 2>/dev/null || true; rm -rf $scratch/root $scratch/untar"
  printf '\n%-22s %10s %10s %10s %8s\n' "archive" "size" "tar xzf" "ingest" "ratio"
  for archive in "$big" "$small"; do
    local json="$scratch/$(basename "$archive").json"
    hyperfine --style none --runs "$RUNS" --warmup 1 --export-json "$json" \
      --prepare "$clean; mkdir -p $scratch/untar; sync" \
      --command-name tar "tar xzf $archive -C $scratch/untar" \
      --command-name ingest "$hookbox --root $scratch/root ingest $archive" >/dev/null
    python3 - "$json" "$archive" <<'PY'
import json, os, statistics, sys
results = {r['command']: statistics.median(r['times']) for r in json.load(open(sys.argv[1]))['results']}
size = os.path.getsize(sys.argv[2]) / 1e6
print(f"{os.path.basename(sys.argv[2]):<22} {size:8.1f}MB {results['tar']*1000:8.0f}ms {results['ingest']*1000:8.0f}ms {results['ingest']/results['tar']:7.2f}x")
PY
  done
  eval "$clean"
  echo "(medians of $RUNS runs; ingest includes sha256 of every file, the canonical digest and one syncfs before the rename; tar does no fsync)"
}

main() {
  bench_ingest
}

main "$@"
