#!/usr/bin/env python3
# usage: perf script -i perf.data | perf-under.py <regex of a frame> [depth]
# For the samples with a frame matching the regex: the frame(s) just above it (its callees toward the leaf), counted.
import sys, re, collections
pat = re.compile(sys.argv[1]); depth = int(sys.argv[2]) if len(sys.argv) > 2 else 1
from perf_samples import read_samples
samples = [[sym for sym, _ in frames] for _, frames in read_samples(sys.stdin) if frames]
n = len(samples); c = collections.Counter(); hit = 0
for s in samples:
  idx = [i for i, f in enumerate(s) if pat.search(f)]
  if not idx: continue
  hit += 1
  i = idx[-1]  # outermost match (closest to root)
  js = [f for f in s[:i] if f.startswith('JS:')]
  c[' <- '.join(reversed(js[-depth:])) if js else '(native) ' + (s[i-1] if i > 0 else s[i])] += 1
print(f'{hit} of {n} samples ({100*hit/n:.1f} %)')
for k, v in c.most_common(40): print(f'{100*v/n:6.1f} %  {k[:220]}')
