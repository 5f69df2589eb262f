#!/usr/bin/env bash
# Where a sequential task's write system calls go: three nodes of one
# checkout on loopback (capacity 4), N built-in echo tasks submitted and
# waited for one after another (POST /v1/tasks?wait=) through the leader,
# with strace attached to the three node processes for the measured tasks
# only; then strace-report.ts classifies each call by its file (the WAL,
# the database file, a socket, a pipe or log) and prints calls per task.
#
#   bench/results/h14writes/strace-seq.sh [--root DIR] [--tasks N] [--keep DIR]
#
# STRACE_ALL=1: every system call instead, counted (strace -c) per node.
# Runs itself in a private network namespace (scripts/isolated.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/../../.." && pwd)
root=$here; tasks=200; keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$(cd "$2" && pwd); shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "strace-seq: unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ "${TASKMESH_ISOLATED:-}" != 1 ]; then exec sh "$here/scripts/isolated.sh" "$0" --root "$root" --tasks "$tasks" ${keep:+--keep "$keep"}; fi
ip link set lo up 2>/dev/null || true
work=$(mktemp -d /tmp/taskmesh-strace-XXXXXX)
. "$here/scripts/bench/local-nodes.sh"
for i in 1 2 3; do
  start_node "$root" "$work/n$i.log" --data-dir "$work/d$i" --http-port 744$i --capacity 4
  [ "$i" = 1 ] && sleep 1
done
leader=$(agreed_leader 7441 3)
[ -n "$leader" ] || { echo "strace-seq: no leader" >&2; cat "$work"/n*.log >&2; exit 1; }
lport=""
for p in 7441 7442 7443; do [ "$(node_id $p)" = "$leader" ] && lport=$p; done
client() {
  "$node" -e '
const [n, port] = [Number(process.argv[1]), process.argv[2]]; const lat = []
;(async () => { for (let i = 0; i < n; i++) { const t = performance.now(); const r = await fetch(`http://127.0.0.1:${port}/v1/tasks?wait=10000`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "echo", payload: { i } }) }); const b = await r.json(); if (b.status !== "succeeded") throw new Error("task " + b.status); lat.push(performance.now() - t) }
  lat.sort((a, b) => a - b); console.log(`p50 ${lat[n >> 1].toFixed(2)} ms (under strace)`) })()' "$1" "$lport"
}
client 50 >/dev/null # warm up
sleep 1
spids=()
i=0
for p in "${pids[@]}"; do
  i=$((i + 1))
  if [ -n "${STRACE_ALL:-}" ]; then strace -c -f -qq -o "$work/summary.n$i" -p "$p" &
  else strace -f -y -qq -e trace=write,writev,pwrite64,pwritev,pwritev2,fsync,fdatasync,sendmsg,sendto -o "$work/strace.n$i" -p "$p" &
  fi
  spids+=($!)
done
sleep 1
client "$tasks"
sleep 0.3
for s in "${spids[@]}"; do kill -INT "$s" 2>/dev/null || true; done
wait "${spids[@]}" 2>/dev/null || true
echo "== $(git -C "$root" rev-parse --short HEAD 2>/dev/null) ($root), $tasks tasks, leader n$((lport - 7440)), load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${STRACE_ALL:-}" ]; then for i in 1 2 3; do echo "-- n$i: every system call (strace -c), calls per task"; awk -v n="$tasks" '$4 ~ /^[0-9]+$/ && NF>=5 {printf "  %7.2f %s\n", $4/n, $NF}' "$work/summary.n$i" | sort -rn | head -25; done
else "$node" "$here/bench/results/h14writes/strace-report.ts" "$tasks" "$work"/strace.n1 "$work"/strace.n2 "$work"/strace.n3; fi
if [ -n "$keep" ]; then mkdir -p "$keep"; cp "$work"/strace.n* "$work"/summary.n* "$keep"/ 2>/dev/null || true; fi
