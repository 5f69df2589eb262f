#!/usr/bin/env python3
# usage: perf-files.py <perf script output>: samples by the file of the innermost JS frame (native leaf frames
# counted to the JS function that called them), kernel and GC threads apart.
import sys, re, collections
from perf_samples import read_samples
samples=read_samples(open(sys.argv[1]))
n=len(samples); c=collections.Counter()
for thread, frames in samples:
  frames=[sym for sym, _ in frames]
  if not thread.startswith('MainThread') and not thread.startswith('node'): c['thread '+thread]+=1; continue
  js=[f for f in frames if f.startswith('JS:')]
  if not js:
    c['native only: '+(frames[0] if frames else '?')[:60]]+=1; continue
  m=re.search(r'(file://\S+|node:\S+)',js[0])
  f=m.group(1) if m else js[0]
  f=re.sub(r'file:///work/[^/]+/dist/','',f); f=re.sub(r':\d+:\d+$','',f)
  c[f]+=1
print(n,'samples')
for k,v in c.most_common(40): print(f'{100*v/n:6.1f} %  {k}')
