#!/bin/sh
# Runs a command inside a private network namespace: only loopback, with
# multicast on, so the nodes that tests start find each other by mDNS without
# a single packet reaching the real network. Needs Linux and root or
# unprivileged user namespaces (util-linux `unshare`).
#   usage: sh scripts/isolated.sh <command> [args...]
# When isolation is impossible it says why and refuses, unless
# TASKMESH_ALLOW_LAN=1 (then the command runs on the machine's own network).
set -eu
if [ $# -eq 0 ]; then
  echo "usage: scripts/isolated.sh <command> [args...]" >&2
  exit 2
fi
if [ "${TASKMESH_ISOLATED:-}" = 1 ]; then
  exec "$@"            # already inside a private namespace
fi
if [ "$(uname -s)" != Linux ] || ! command -v unshare >/dev/null 2>&1; then
  reason="this OS has no 'unshare' (Linux network namespaces)"
elif [ "$(id -u)" -eq 0 ] && unshare --net true 2>/dev/null; then
  flags="--net"
elif unshare --net --map-root-user true 2>/dev/null; then
  flags="--net --map-root-user"
else
  reason="unshare --net failed: run as root or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
fi
if [ -z "${flags:-}" ]; then
  if [ "${TASKMESH_ALLOW_LAN:-}" = 1 ]; then
    echo "isolated.sh: cannot isolate ($reason); TASKMESH_ALLOW_LAN=1, so running on this machine's network: test nodes will multicast mDNS on your LAN" >&2
    exec "$@"
  fi
  echo "isolated.sh: cannot run in a private network namespace: $reason." >&2
  echo "isolated.sh: the tests start nodes that multicast mDNS; set TASKMESH_ALLOW_LAN=1 to run them on this machine's network anyway." >&2
  exit 3
fi
export TASKMESH_ISOLATED=1
# shellcheck disable=SC2086
exec unshare $flags -- sh -c '
  ip link set lo up
  ip link set lo multicast on
  ip route add 224.0.0.0/4 dev lo 2>/dev/null || true
  echo "isolated.sh: running in a private network namespace (loopback only)" >&2
  exec "$@"
' isolated "$@"
