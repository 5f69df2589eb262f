#!/usr/bin/env python3
# usage: perf-files.py <perf script output>: samples by the file of the innermost JS frame (native leaf frames
# counted to the JS function that called them), kernel and GC threads apart.
import sys, re, collections
samples=[];cur=None
for line in open(sys.argv[1]):
  line=line.rstrip('\n')
  if not line.strip():
    if cur is not None: samples.append(cur); cur=None
    continue
  if line[0] not in ' \t': cur=[line.split()[0]]; continue
  m=re.match(r'\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$',line)
  if m and cur is not None: cur.append(re.sub(r'\+0x[0-9a-f]+$','',m.group(1)))
if cur: samples.append(cur)
n=len(samples); c=collections.Counter()
for s in samples:
  thread, frames = s[0], s[1:]
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
