#!/usr/bin/env bash
# Sequential submit-and-wait latency of two checkouts measured side by side,
# for a before-and-after pair on a busy machine: three nodes of each
# (capacity 4, the benchmark's user handler configured) on loopback, and N
# tasks (POST /v1/tasks?wait=, one after another) sent alternately to one
# cluster and the other, so both see the same load at the same moments.
# Three runs as in the latency bench: built-in echo through the leader, the
# user handler through the leader, the user handler through a follower.
# Prints p50/p90/p99 per checkout and run.
#
#   scripts/bench/seq-pair.sh --base DIR [--mine DIR] [--tasks N] [--out FILE]
#
# Starts nodes, so it runs itself inside a private network namespace
# (scripts/isolated.sh). Build both checkouts first. --out: also append the
# lines to FILE.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
base=""; mine=$here; tasks=400; out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$(cd "$2" && pwd); shift 2 ;;
    --mine) mine=$(cd "$2" && pwd); shift 2 ;;
    --tasks) tasks=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "seq-pair: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$base" ] || { echo "seq-pair: --base DIR is required" >&2; exit 2; }
if [ "${TASKMESH_ISOLATED:-}" != 1 ]; then exec sh "$here/scripts/isolated.sh" "$0" --base "$base" --mine "$mine" --tasks "$tasks" ${out:+--out "$out"}; fi
ip link set lo up 2>/dev/null || true
work=$(mktemp -d /tmp/taskmesh-seq-pair-XXXXXX)
. "$here/scripts/bench/local-nodes.sh"
# cluster <name> <root> <first port>
cluster() {
  echo "{\"cluster\":\"pair-$1-$$\",\"capacity\":4,\"handlers\":{\"user-echo\":\"$here/scripts/bench/user-echo-handler.js\"}}" > "$work/$1.json"
  for i in 0 1 2; do
    start_node "$2" "$work/$1-n$i.log" --config "$work/$1.json" --data-dir "$work/$1-d$i" --http-port $(($3 + i))
    if [ "$i" = 0 ]; then sleep 1; fi
  done
}
# ports <first port>: prints "<leader port> <follower port>" once three nodes agree
ports() {
  leader=$(agreed_leader "$1" 3)
  [ -n "$leader" ] || { echo "seq-pair: no leader of three nodes at port $1 within 30 s" >&2; exit 1; }
  l=""; f=""
  for p in $1 $(($1 + 1)) $(($1 + 2)); do
    id=$(node_id $p)
    if [ "$id" = "$leader" ]; then l=$p; elif [ -z "$f" ]; then f=$p; fi
  done
  echo "$l $f"
}
cluster base "$base" 7441
cluster mine "$mine" 7451
read -r bl bf < <(ports 7441)
read -r ml mf < <(ports 7451)
sleep 1
result=$("$node" -e '
const [n, bl, bf, ml, mf] = process.argv.slice(1).map(Number)
const one = async (port, type) => { const t = performance.now(); const r = await fetch(`http://127.0.0.1:${port}/v1/tasks?wait=10000`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ type, payload: {} }) }); const b = await r.json(); if (b.status !== "succeeded") throw new Error("task " + b.status); return performance.now() - t }
const pct = (a, p) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p / 100))].toFixed(2)
;(async () => {
  for (const [label, type, b, m] of [["leader, echo", "echo", bl, ml], ["leader, user handler", "user-echo", bl, ml], ["follower, user handler", "user-echo", bf, mf]]) {
    const lat = { base: [], mine: [] }
    for (let i = 0; i < 20; i++) { await one(b, type); await one(m, type) } // warm-up, not counted
    for (let i = 0; i < n; i++) {
      // Alternate which goes first, so that neither always follows the other.
      if (i % 2 === 0) { lat.base.push(await one(b, type)); lat.mine.push(await one(m, type)) } else { lat.mine.push(await one(m, type)); lat.base.push(await one(b, type)) }
    }
    for (const k of ["base", "mine"]) console.log(`${label}: ${k} p50 ${pct(lat[k], 50)} ms, p90 ${pct(lat[k], 90)} ms, p99 ${pct(lat[k], 99)} ms`)
  }
})()' "$tasks" "$bl" "$bf" "$ml" "$mf")
header="seq-pair $(date -u +%FT%TZ), $tasks tasks each, load at start $(cut -d' ' -f1-3 /proc/loadavg); base $(git -C "$base" describe --always --dirty 2>/dev/null) ($base), mine $(git -C "$mine" describe --always --dirty 2>/dev/null) ($mine)"
echo "$header"; echo "$result"
if [ -n "$out" ]; then { echo "$header"; echo "$result"; echo; } >> "$out"; fi
