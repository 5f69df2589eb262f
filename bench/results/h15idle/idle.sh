#!/bin/bash
# usage: idle.sh <checkout> <nodes> <outfile> [profile-dir]
# Run inside a private network namespace (sh scripts/isolated.sh), under the heavy lock for 10+ nodes.
# Starts N nodes of <checkout> on loopback (mDNS on lo), waits until node 1 sees N alive
# and a leader (at most 90 s) plus 10 s, reads utime+stime of every node over 20 s idle
# (cpu% = % of one core), then `strace -c -f` of the last node for 10 s.
# With a profile dir, the last node runs with --cpu-prof, and the idle window's offsets
# (ms after its spawn) are printed for scripts/bench/profile.ts's summarizeProfiles.
# PERF=1 with a profile dir: the last node runs with --perf-basic-prof-only-functions instead, and
# `perf record -e cpu-clock -g` samples it for 20 s after the CPU window (CPU time, kernel included).
set -u
CO=$1; N=$2; OUT=$3; PROF=${4:-}
NODE=${NODE:-$(cd "$CO" && pwd)/node_modules/.bin/node}
D=$(mktemp -d /tmp/h15idle-run.XXXXXX)
pids=()
for i in $(seq 1 "$N"); do
  env=()
  if [ -n "$PROF" ] && [ "$i" = "$N" ]; then mkdir -p "$PROF"; spawn_ms=$(date +%s%3N)
    if [ "${PERF:-}" = 1 ]; then env=(NODE_OPTIONS="--perf-basic-prof-only-functions"); else env=(NODE_OPTIONS="--cpu-prof --cpu-prof-dir=$PROF"); fi
  fi
  (cd "$CO" && exec env "${env[@]}" "$NODE" bin/taskmesh.js start --name h$i --http-port $((7600+i)) --data-dir $D/h$i --listen /ip4/127.0.0.1/tcp/0 --log-level ${LOGLEVEL:-warn} > $D/h$i.log 2>&1) &
  pids+=($!)
done
t_start=$(date +%s)
formed=no
for _ in $(seq 1 450); do
  ok=$(curl -sf -m 2 localhost:7601/v1/cluster | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);const a=j.members.filter(m=>m.status==="alive").length;console.log(j.leader&&a===Number(process.argv[1])?"yes":"no")}catch{console.log("no")}})' "$N" 2>/dev/null)
  [ "$ok" = yes ] && { formed=yes; break; }
  sleep 0.2
done
echo "checkout $CO $(git -C $CO rev-parse --short HEAD 2>/dev/null) nodes $N formed=$formed after $(( $(date +%s) - t_start )) s; load: $(cat /proc/loadavg)" >> $OUT
sleep 10
tick=$(getconf CLK_TCK)
cpu () { awk '{print $14+$15}' /proc/$1/stat; }
io () { awk '/^sysc[rw]:/ {s+=$2} END {print s}' /proc/$1/io; }
declare -A a; declare -A io0
for p in "${pids[@]}"; do a[$p]=$(cpu $p); io0[$p]=$(io $p); done
t0=$(date +%s.%N); w0=$(date +%s%3N); sleep 20; t1=$(date +%s.%N); w1=$(date +%s%3N)
vals=(); rw=0
for p in "${pids[@]}"; do b=$(cpu $p); vals+=($(echo "($b-${a[$p]})*100/$tick/($t1-$t0)" | bc -l | cut -c1-5)); rw=$((rw + $(io $p) - ${io0[$p]})); done
echo "read+write system calls per node per second (all nodes, the 20 s window): $(echo "$rw/$N/($t1-$t0)" | bc -l | cut -c1-6)" >> $OUT
echo "cpu% per node: ${vals[*]}" >> $OUT
printf '%s\n' "${vals[@]}" | sort -n | awk '{v[NR]=$1; s+=$1} END {printf "median %.2f mean %.2f min %.2f max %.2f\n", (NR%2?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2), s/NR, v[1], v[NR]}' >> $OUT
[ -n "$PROF" ] && echo "profile idle window: skipMs $((w0-spawn_ms)) untilMs $((w1-spawn_ms))" >> $OUT
last=${pids[$((N-1))]}
if [ -n "$PROF" ] && [ "${PERF:-}" = 1 ]; then
  perf record -e cpu-clock -F 997 -g -o $PROF/perf.data -p $last -- sleep 20 >/dev/null 2>&1
  cp /tmp/perf-$last.map $PROF/ 2>/dev/null
  echo "perf record 20 s of the last node into $PROF/perf.data" >> $OUT
fi
if [ -z "$PROF" ] && command -v strace >/dev/null; then
  timeout -s INT 10 strace -c -f -p $last -o $D/strace.txt >/dev/null 2>&1
  echo "strace -c -f 10 s of the last node:" >> $OUT; head -22 $D/strace.txt >> $OUT
  timeout -s INT 5 strace -f -e trace=write,read -e signal=none -p $last -o $D/rw.txt >/dev/null 2>&1
  echo "write/read sizes in 5 s of the last node (count, call, bytes returned):" >> $OUT
  grep -oE '(write|read)\([0-9]+,.*= [0-9-]+' $D/rw.txt | sed -E 's/^(write|read)\(([0-9]+),.*= ([0-9-]+)$/\1 \3/' | sort | uniq -c | sort -rn | head -30 >> $OUT
fi
grep -h '"level":[45]0' $D/h*.log | head -5 >> $OUT
for p in "${pids[@]}"; do kill $p 2>/dev/null; done
wait
[ -n "${KEEP:-}" ] && cp -r $D "$KEEP"
rm -rf $D
