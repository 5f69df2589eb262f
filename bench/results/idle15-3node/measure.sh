#!/bin/sh
# usage: measure.sh <checkout> <outfile> ; run inside a private namespace.
# Starts 3 nodes, waits 15 s to settle, reads utime+stime over 20 s idle, then strace -c -f one node 10 s.
set -u
CO=$1; OUT=$2
D=$(mktemp -d /tmp/idle15-run.XXXXXX)
cd "$CO"
pids=""
for i in 1 2 3; do
  node_modules/.bin/node bin/taskmesh.js start --name h$i --http-port 758$i --data-dir $D/h$i --listen /ip4/127.0.0.1/tcp/0 > $D/h$i.log 2>&1 &
  pids="$pids $!"
done
sleep 15
tick=$(getconf CLK_TCK)
cpu () { awk '{print $14+$15}' /proc/$1/stat; }
echo "checkout $CO $(git -C $CO rev-parse --short HEAD) load: $(cat /proc/loadavg)" >> $OUT
for p in $pids; do eval "a_$p=$(cpu $p)"; done
t0=$(date +%s.%N); sleep 20; t1=$(date +%s.%N)
for p in $pids; do b=$(cpu $p); eval "a=\$a_$p"; echo "pid $p cpu% $(echo "($b-$a)*100/$tick/($t1-$t0)" | bc -l | cut -c1-6)" >> $OUT; done
first=$(echo $pids | cut -d' ' -f1)
timeout -s INT 10 strace -c -f -p $first -o $D/strace.txt >/dev/null 2>&1
echo "strace -c -f 10 s of $first:" >> $OUT; head -25 $D/strace.txt >> $OUT
timeout -s INT 5 strace -f -e trace=openat -p $first -o $D/openat.txt >/dev/null 2>&1
echo "openat in 5 s:" >> $OUT; grep -o '"[^"]*"' $D/openat.txt | sort | uniq -c | sort -rn | head >> $OUT
for p in $pids; do kill $p; done
wait
rm -rf $D
