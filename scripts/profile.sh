#!/usr/bin/env bash
# Where a sandbox start spends its time, for whoever works on start-up. Not a benchmark
# (scripts/bench.sh is): these are the measurements behind its figures.
#
#   scripts/profile.sh ab OLD NEW [ROUNDS] [RUNS]   two hookbox builds side by side with bwrap
#                                                   and the unshare floor, interleaved rounds
#   scripts/profile.sh phases [HOOKBOX] [RUNS]      median time of each phase of a run, from
#                                                   scheduler tracepoints (needs perf, root)
#   scripts/profile.sh blocked [HOOKBOX] [RUNS]     time spent in uninterruptible sleep, by the
#                                                   kernel function waited in (needs perf, root)
#
# Each runs `sandbox-run /bin/true` over a one-layer overlay, the upper and work dirs on the
# filesystem of $PROFILE_DIR (default: a fresh directory under /tmp).
set -euo pipefail

default_hookbox() {
  echo "$PWD/target/${CARGO_BUILD_TARGET:-x86_64-unknown-linux-gnu}/release/hookbox"
}

dir=$(mktemp -d "${PROFILE_DIR:-/tmp}/hookbox-profile-XXXXXX")
trap 'rm -rf "$dir"' EXIT
chmod 755 "$dir"
mkdir -p "$dir/lower"
echo x >"$dir/lower/file"

# A sandbox-run command line with its own upper and work dirs named by $2.
run_line() {
  mkdir -p "$dir/$2/upper" "$dir/$2/work"
  echo "$1 sandbox-run --upper $dir/$2/upper --work $dir/$2/work --lower $dir/lower -- /bin/true"
}

ab() {
  local old=$1 new=$2 rounds=${3:-30} runs=${4:-20} jsons=() round
  local commands=(
    "$(run_line "$old" old)"
    "$(run_line "$new" new)"
    "bwrap --unshare-all --ro-bind /usr /usr --ro-bind /etc /etc --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp /bin/true"
    "unshare -Urmpf --mount-proc /bin/true"
  )
  for ((round = 0; round < rounds; round++)); do
    jsons+=("$dir/round-$round.json")
    hyperfine -N --style none --warmup 2 --runs "$runs" --export-json "${jsons[-1]}" -- \
      "${commands[@]}" >/dev/null
  done
  echo "medians (ms) of $((rounds * runs)) runs each, $rounds interleaved rounds:"
  jq -rs '[range(0; .[0].results | length) as $i | [.[].results[$i].times[]] | sort
    | .[length / 2 | floor] * 1000 * 100 | round / 100]
    | "old \(.[0])  new \(.[1])  bwrap \(.[2])  unshare floor \(.[3])"' "${jsons[@]}"
}

phases() {
  local hookbox=${1:-$(default_hookbox)} runs=${2:-40} line
  line=$(run_line "$hookbox" phases)
  perf record -q -o "$dir/perf.data" -a \
    -e sched:sched_process_fork,sched:sched_process_exit,sched:sched_process_exec -- \
    sh -c "for i in \$(seq $runs); do $line; done" >/dev/null
  perf script -i "$dir/perf.data" -F comm,pid,time,event,trace 2>/dev/null |
    HOOKBOX="$hookbox" python3 -c '
import os, re, statistics, sys
binary = os.environ["HOOKBOX"]
runs, run = [], None
for line in sys.stdin:
    m = re.match(r"\s*(\S+)\s+(\d+)\s+([\d.]+):\s+sched:(\S+):\s*(.*)", line)
    if not m:
        continue
    pid, t, event, rest = m.group(2), float(m.group(3)) * 1000, m.group(4), m.group(5)
    if event == "sched_process_exec" and rest.startswith("filename=" + binary + " "):
        run = {"exec": t, "pid": pid}
        runs.append(run)
    elif run is None:
        continue
    elif event == "sched_process_fork":
        parent = re.search(r" pid=(\d+)", rest).group(1)
        child = re.search(r"child_pid=(\d+)", rest).group(1)
        if parent == run["pid"] and "helper" not in run:
            run["helper"], run["helper_pid"] = t, child
        elif parent == run.get("helper_pid") and "init" not in run:
            run["init"], run["init_pid"] = t, child
        elif parent == run.get("init_pid"):
            run["command" if "network" in run else "network"] = t
    elif event == "sched_process_exec" and "/bin/true" in rest:
        run["exec command"] = t
    elif event == "sched_process_exit":
        pid = re.search(r" pid=(\d+)", rest).group(1)
        if pid == run.get("init_pid"):
            run["init exit"] = t
        elif pid == run["pid"]:
            run["end"] = t
        elif "comm=true" in rest:
            run["command exit"] = t
steps = ["exec", "helper", "init", "network", "command", "exec command", "command exit",
         "init exit", "end"]
names = ["runner start to helper spawn", "helper start to init clone",
         "init start to network child", "mounts, to command fork", "command setup to exec",
         "the command (/bin/true)", "command exit to init exit", "init exit to runner exit"]
for (a, b), name in zip(zip(steps, steps[1:]), names):
    spans = [r[b] - r[a] for r in runs if a in r and b in r]
    if spans:
        print(f"{name:32} median {statistics.median(spans):6.3f} ms  ({len(spans)} runs)")
spans = [r["end"] - r["exec"] for r in runs if "end" in r]
if spans:
    label = "whole run"
    print(f"{label:32} median {statistics.median(spans):6.3f} ms")
'
}

blocked() {
  local hookbox=${1:-$(default_hookbox)} runs=${2:-30} line
  line=$(run_line "$hookbox" blocked)
  perf record -q -o "$dir/perf.data" -a -g -e sched:sched_switch,sched:sched_wakeup -- \
    sh -c "for i in \$(seq $runs); do $line; done" >/dev/null
  perf script -i "$dir/perf.data" -F comm,tid,time,event,trace,ip,sym 2>/dev/null |
    RUNS="$runs" python3 -c '
import collections, os, re, sys
runs = int(os.environ["RUNS"])
waits = ("synchronize_rcu_expedited", "synchronize_rcu_normal", "rcu_barrier",
         "blkdev_issue_discard", "submit_bio_wait", "wait_for_completion_state")
callers = ("path_umount", "free_nsproxy", "ovl_free_fs", "do_rmdir", "do_unlinkat",
           "kernel_clone", "ovl_fill_super", "do_mkdirat", "ext4_free_blocks")
asleep, total, count = {}, collections.defaultdict(float), collections.Counter()
for block in sys.stdin.read().split("\n\n"):
    lines = block.strip().split("\n")
    m = re.match(r"\s*(\S+)\s+(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)", lines[0]) if lines else None
    if not m:
        continue
    comm, tid, t, event, rest = m.group(1), m.group(2), float(m.group(3)), m.group(4), m.group(5)
    stack = [l.split()[1].split("+")[0] for l in lines[1:] if len(l.split()) > 1]
    if event == "sched:sched_switch" and "prev_state=D" in rest and not comm.startswith(("kworker", "rcu")):
        wait = next((s for s in stack if s in waits), stack[2] if len(stack) > 2 else "?")
        caller = next((s for s in stack if s in callers), "")
        asleep[tid] = (t, f"{comm} {wait} {caller}")
    elif event == "sched:sched_wakeup":
        woken = re.search(r"pid=(\d+)", rest).group(1)
        if woken in asleep:
            start, key = asleep.pop(woken)
            total[key] += t - start
            count[key] += 1
for key in sorted(total, key=lambda k: -total[k]):
    print(f"{total[key] * 1000 / runs:7.3f} ms/run  {count[key] / runs:4.1f}/run  {key}")
'
}

case "${1:-}" in
  ab) shift; [ $# -ge 2 ] || { echo "usage: $0 ab OLD NEW [ROUNDS] [RUNS]" >&2; exit 2; }; ab "$@" ;;
  phases) shift; phases "$@" ;;
  blocked) shift; blocked "$@" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
