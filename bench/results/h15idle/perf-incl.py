#!/usr/bin/env python3
# usage: perf script -i perf.data | perf-incl.py [top]
# Inclusive and self share of each symbol over all samples (a symbol counted once per stack),
# plus a breakdown by category (the first category whose pattern matches a frame, leaf to root).
import sys, re, collections
top = int(sys.argv[1]) if len(sys.argv) > 1 else 60
CATS = [
  ('gc', r'Scavenger|MarkCompact|Heap::|GCTracer|ConcurrentMarking|V8Worker'),
  ('ed25519 verify (heartbeat signature check)', r'ed25519_verify|verifyOneShot'),
  ('ed25519 sign (own heartbeat)', r'ed25519_sign|signOneShot'),
  ('mdns', r'libp2p_mdns|dgram|mdns-search'),
  ('heartbeat publish (ours + gossipsub publish)', r'publishHeartbeat|#publishNow'),
  ('membership tick (cluster-runtime)', r'#tick file.*cluster-runtime'),
  ('V8 compiler', r'Compile|Maglev|Turbofan|baseline'),
  ('topic validator (decode, learn)', r'#validate file'),
  ('membership core (onHeartbeat)', r'onHeartbeat|cluster-core|core/membership'),
  ('gossipsub heartbeat (mesh, gossip)', r"'heartbeat file.*gossipsub|runHeartbeat|emitGossip|doEmitGossip"),
  ('gossipsub receive/forward', r'handleReceivedRpc|handleReceivedMessage|forwardMessage|validateReceivedMessage|gossipsub'),
  ('noise encrypt/decrypt', r'noise'),
  ('yamux', r'yamux'),
  ('socket write (kernel incl.)', r'writeBuffer|Socket._write|__x64_sys_write|sys_writev|tcp_sendmsg'),
  ('socket read', r'onStreamRead|tcp_recvmsg|sys_read'),
  ('other timers (task runtime, events, libp2p)', r'processTimers|listOnTimeout'),
]
from perf_samples import read_samples
samples = read_samples(sys.stdin)
n = len(samples)
incl = collections.Counter(); selfc = collections.Counter(); cats = collections.Counter()
for thread, frames in samples:
  seen = set()
  for sym, dso in frames:
    if sym not in seen: seen.add(sym); incl[sym] += 1
  if frames: selfc[frames[0][0]] += 1
  cat = 'other (stream plumbing, microtasks, event loop)'
  if any(re.search(r'Compile|Maglev|Turbofan|baseline::', sym) for sym, _ in frames): cat = 'V8 compiler'
  elif thread.startswith('V8Worker') or thread.startswith('V8'): cat = 'gc'
  else:
    for name, pat in CATS:
      if any(re.search(pat, sym) for sym, _ in frames): cat = name; break
  cats[cat] += 1
print(f'{n} samples')
print('--- by category (first match leaf to root in the list order)')
for k, v in cats.most_common(): print(f'{100*v/n:6.1f} %  {k}')
print('--- self'); [print(f'{100*v/n:6.1f} %  {k[:150]}') for k, v in selfc.most_common(25)]
print('--- inclusive'); [print(f'{100*v/n:6.1f} %  {k[:150]}') for k, v in incl.most_common(top)]
