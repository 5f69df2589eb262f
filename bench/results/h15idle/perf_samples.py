"""Reads `perf script` output (the readers perf-incl.py, perf-under.py and perf-files.py share it)."""
import re

FRAME = re.compile(r'\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)$')
OFFSET = re.compile(r'\+0x[0-9a-f]+$')


def read_samples(lines):
  """Each sample as (thread, frames): the thread is the first word of its header line; frames leaf to root,
  each (symbol without its +0x offset, dso). A sample ends at a blank line; lines before the first header are skipped."""
  samples = []; cur = None
  for line in lines:
    line = line.rstrip('\n')
    if not line.strip():
      if cur is not None: samples.append(cur); cur = None
      continue
    if line[0] not in ' \t':
      cur = (line.split()[0], []); continue
    m = FRAME.match(line)
    if m and cur is not None: cur[1].append((OFFSET.sub('', m.group(1)), m.group(2)))
  if cur is not None: samples.append(cur)
  return samples
