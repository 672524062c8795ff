#!/usr/bin/env bash
# hookbox benchmarks. Each bench_* function prints its figures; main runs them all.
# Needs GNU tar and python3. Inputs are generated once and cached under target/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."

BENCH_DIR="$PWD/target/bench"
RUNS="${BENCH_RUNS:-5}"

# Ingest (hashing and durability included) against GNU `tar xzf` of the same archives into a
# fresh directory: a ~50 MB charm of ~1,000 files and a charm of ~20,000 small files.
bench_ingest() {
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
  local scratch="$BENCH_DIR/scratch"
  rm -rf "$scratch" && mkdir -p "$scratch"
  # Runs alternate (tar, ingest, tar, ...), each into a directory never used before, with a
  # sync before each so neither pays for the other's writeback (ingest's syncfs would), and
  # nothing is deleted until the end (ext4 makes creating inodes right after deleting many
  # slower, which would punish whichever command runs second).
  python3 - "$PWD/target/release/hookbox" "$scratch" "$RUNS" "$big" "$small" <<'PY'
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

main() {
  bench_ingest
}

main "$@"
