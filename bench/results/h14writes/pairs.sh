#!/usr/bin/env bash
# Paired quick runs, alternated: the base's nodes, then the change's nodes,
# both driven by this worktree's bench harness (TASKMESH_LAN_BIN), each run
# under the machine-wide lock, its load average at the start written down.
#   bench/results/h14writes/pairs.sh <out dir> <after bin> <pairs> [first]
set -euo pipefail
here=$(cd "$(dirname "$0")/../../.." && pwd)
out=$1; after=$2; n=$3; first=${4:-1}
mkdir -p "$out"
cd "$here"
for i in $(seq "$first" $((first + n - 1))); do
  for side in base mine; do
    bin=/work/wt-base/bin/taskmesh.js; [ "$side" = mine ] && bin=$after
    flock /tmp/taskmesh-heavy.lock sh -c "echo \"$side-$i \$(date -u +%FT%T) load \$(cut -d' ' -f1-3 /proc/loadavg) bin $bin\" >> '$out/loads.txt'; TASKMESH_LAN_BIN='$bin' npm run bench -- --quick --only latency,throughput --out '$out/$side-$i'" > "$out/$side-$i.log" 2>&1
  done
done
