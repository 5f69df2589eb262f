#!/bin/bash
# usage: pairs.sh <base checkout> <mine checkout> <out dir> <pairs> <sizes...>
# Alternates idle.sh runs of the two checkouts (base first in odd pairs, mine first in even ones),
# each run under the heavy lock, inside its own private network namespace.
set -u
BASE=$1; MINE=$2; OUT=$3; PAIRS=$4; shift 4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
for n in "$@"; do
  for p in $(seq 1 "$PAIRS"); do
    if [ $((p % 2)) = 1 ]; then order="base mine"; else order="mine base"; fi
    for side in $order; do
      co=$BASE; [ $side = mine ] && co=$MINE
      flock /tmp/taskmesh-heavy.lock sh "$here/../../../scripts/isolated.sh" bash "$here/idle.sh" "$co" "$n" "$OUT/$side-n$n-$p.txt" 2>/dev/null
    done
  done
done
