#!/usr/bin/env bash
# Where a sequential task's milliseconds go: three nodes of one checkout on
# loopback (capacity 4, the benchmark's user handler configured), each with
# TASKMESH_TRACE (src/trace.ts) writing timestamped task-path events to one
# file; N tasks submitted and waited for one after another (POST
# /v1/tasks?wait=) through the leader (built-in echo, then the user handler)
# and through a follower (user handler); then scripts/bench/trace-report.ts
# prints, per event on each node, its median time after the request reached
# the origin's HTTP route, and the client's round trip.
#
#   scripts/bench/trace.sh [--root DIR] [--tasks N] [--keep FILE]
#
# Starts nodes, so it runs itself inside a private network namespace
# (scripts/isolated.sh). --root: the checkout whose nodes run (default this
# one; build it first; it must have src/trace.ts); --keep: copy the raw
# trace there.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
root=$here; tasks=200; keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root=$(cd "$2" && pwd); shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "trace: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "${TASKMESH_ISOLATED:-}" != 1 ]; then exec sh "$here/scripts/isolated.sh" "$0" --root "$root" --tasks "$tasks" ${keep:+--keep "$keep"}; fi
ip link set lo up 2>/dev/null || true
work=$(mktemp -d /tmp/taskmesh-trace-XXXXXX)
. "$here/scripts/bench/local-nodes.sh"
echo "{\"cluster\":\"trace-$$\",\"capacity\":4,\"handlers\":{\"user-echo\":\"$here/scripts/bench/user-echo-handler.js\"}}" > "$work/cluster.config.json"
for i in 1 2 3; do
  TASKMESH_TRACE="$work/trace.txt" start_node "$root" "$work/n$i.log" --config "$work/cluster.config.json" --data-dir "$work/d$i" --http-port 743$i
  [ "$i" = 1 ] && sleep 1
done
echo "trace: waiting for three nodes to agree on a leader" >&2
leader=$(agreed_leader 7431 3)
[ -n "$leader" ] || { echo "trace: no leader of three nodes within 30 s" >&2; cat "$work"/n*.log >&2; exit 1; }
lport=""; fport=""
for p in 7431 7432 7433; do
  id=$(node_id $p)
  if [ "$id" = "$leader" ]; then lport=$p; elif [ -z "$fport" ]; then fport=$p; fi
done
sleep 1
run() { # label port type
  : > "$work/trace.txt"
  "$node" -e '
const [n, port, type, file] = [Number(process.argv[1]), process.argv[2], process.argv[3], process.argv[4]]; const lat = []
const fd = require("node:fs").openSync(file, "a"); const mark = ev => require("node:fs").writeSync(fd, `${(performance.timeOrigin + performance.now()).toFixed(3)} ${process.pid} ${ev} -\n`)
;(async () => { for (let i = 0; i < n; i++) { const t = performance.now(); mark("client.send"); const r = await fetch(`http://127.0.0.1:${port}/v1/tasks?wait=10000`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type, payload: { i } }) }); const b = await r.json(); mark("client.recv"); if (b.status !== "succeeded") throw new Error("task " + b.status); lat.push(performance.now() - t) }
  lat.sort((a, b) => a - b); console.log(`client round trip p50 ${lat[n >> 1].toFixed(2)} ms, p90 ${lat[Math.floor(n * 0.9)].toFixed(2)} ms, p99 ${lat[Math.floor(n * 0.99)].toFixed(2)} ms`) })()' "$tasks" "$2" "$3" "$work/trace.txt"
  "$node" "$here/scripts/bench/trace-report.ts" "$work/trace.txt" "$1"
  if [ -n "$keep" ]; then cp "$work/trace.txt" "$keep.$1"; fi
}
echo "== $(git -C "$root" rev-parse --short HEAD 2>/dev/null) load $(cut -d' ' -f1-3 /proc/loadavg)"
run leader-echo "$lport" echo
run leader-user "$lport" user-echo
run follower-user "$fport" user-echo
