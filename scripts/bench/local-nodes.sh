# Shared by the bench scripts that start a few nodes on loopback inside their
# own network namespace (seq-writes.sh, seq-pair.sh, trace.sh): sourced, not
# run. Expects $here (this checkout) and $work (a scratch folder); sets
# $node, $pids and a trap that stops the nodes and removes $work.
node="$here/node_modules/.bin/node"
pids=()
local_nodes_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap local_nodes_cleanup EXIT

# start_node <checkout> <log file> <taskmesh start arguments...>: one node of that checkout, in the background.
start_node() {
  local root=$1 log=$2; shift 2
  (cd "$root" && exec "$node" bin/taskmesh.js start --log-level warn "$@" > "$log" 2>&1) &
  pids+=($!)
}

# agreed_leader <port> <n>: the leader's id once the node at <port> sees <n> members alive and a leader; empty after 30 s.
agreed_leader() {
  local leader=""
  for _ in $(seq 1 150); do
    leader=$(curl -sf "localhost:$1/v1/cluster" | "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{const j=JSON.parse(s);const alive=j.members.filter(m=>m.status==="alive").length;console.log(j.leader&&alive===Number(process.argv[1])?j.leader.id:"")}catch{console.log("")}})' "$2" || true)
    [ -n "$leader" ] && break
    sleep 0.2
  done
  echo "$leader"
}

# node_id <port>: the id of the node answering at <port>.
node_id() {
  curl -sf "localhost:$1/healthz" | "$node" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).id))'
}
