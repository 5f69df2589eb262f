#!/usr/bin/env bash
# System calls and CPU per task on the sequential path, read from /proc (no
# profiler): two nodes of one checkout on loopback, N built-in echo tasks
# submitted and waited for one after another (POST /v1/tasks?wait=) through
# the leader; per node, the write and read system calls per task (sockets,
# store pages, logs) and user and system CPU-ms per task. Counting calls
# says what a change removed even when the machine is too busy for its CPU
# time or latency to compare; alternate two checkouts for a pair.
#
#   scripts/bench/seq-writes.sh [--root DIR] [--tasks N] [--out DIR]
#
# Starts nodes, so it runs itself inside a private network namespace
# (scripts/isolated.sh). --root: the checkout whose built nodes run (default
# this one; build it first); --out: also append the line to
# DIR/<time>-seq-writes.md.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
root=$here; tasks=300; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$(cd "$2" && pwd); shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "seq-writes: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "${TASKMESH_ISOLATED:-}" != 1 ]; then exec sh "$here/scripts/isolated.sh" "$0" --root "$root" --tasks "$tasks" ${out:+--out "$out"}; fi
work=$(mktemp -d /tmp/taskmesh-seq-writes-XXXXXX)
. "$here/scripts/bench/local-nodes.sh"
for i in 1 2; do
  start_node "$root" "$work/n$i.log" --data-dir "$work/d$i" --http-port 742$i --capacity 2
  [ "$i" = 1 ] && sleep 1
done
echo "seq-writes: waiting for two nodes to agree on a leader" >&2
leader=$(agreed_leader 7421 2)
[ -n "$leader" ] || { echo "seq-writes: no leader of two nodes within 30 s" >&2; exit 1; }
port=7421; [ "$(node_id 7422)" = "$leader" ] && port=7422
snap() { for p in "${pids[@]}"; do echo "$(awk '/^syscr|^syscw/{printf "%s ", $2}' /proc/$p/io) $(awk '{print $14, $15}' /proc/$p/stat)"; done; }
sleep 1
before=$(snap)
echo "seq-writes: $tasks tasks one after another through the leader" >&2
lat=$("$node" -e '
const [n, port] = [Number(process.argv[1]), process.argv[2]]; const lat = []
;(async () => { for (let i = 0; i < n; i++) { const t = performance.now(); const r = await fetch(`http://127.0.0.1:${port}/v1/tasks?wait=10000`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type: "echo", payload: { i } }) }); const b = await r.json(); if (b.status !== "succeeded") throw new Error("task " + b.status); lat.push(performance.now() - t) }
  lat.sort((a, b) => a - b); console.log(`p50 ${lat[n >> 1].toFixed(2)} ms`) })()' "$tasks" "$port")
after=$(snap)
hz=$(getconf CLK_TCK)
line=$(paste <(echo "$before") <(echo "$after") | awk -v n="$tasks" -v hz="$hz" -v lp="$port" 'BEGIN{i=0} {i++; role=(i==lp-7420)?"leader":"follower"; printf "%s: %.1f writes, %.1f reads, %.2f user and %.2f system CPU-ms per task; ", role, ($6-$2)/n, ($5-$1)/n, ($7-$3)*1000/hz/n, ($8-$4)*1000/hz/n}')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
result="$commit ($root), $tasks tasks, load $(cut -d' ' -f1 /proc/loadavg): ${line}latency $lat"
echo "$result"
if [ -n "$out" ]; then mkdir -p "$out"; echo "$result" >> "$out/$(date -u +%Y-%m-%dT%H)-seq-writes.md"; fi
