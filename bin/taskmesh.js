#!/usr/bin/env node
/**
 * The `taskmesh` executable. Plain JavaScript on purpose: Node loads its
 * TypeScript stripper (amaro, about 50 ms of CPU and 18 MB) for the first .ts
 * file it meets, even when the compile cache already holds the stripped code.
 * Before the CLI loads, this
 * - turns on Node's on-disk compile cache: from the second start on, no
 *   module is parsed or compiled again (the cache lives in the OS temp folder;
 *   NODE_COMPILE_CACHE moves it, NODE_DISABLE_COMPILE_CACHE=1 turns it off);
 * - runs the built JavaScript in dist/ (`npm run build`, which `npm ci` and
 *   `npm install` run through `prepare`) when it is at least as new as every
 *   file and folder in src/, with the dependencies from their bundle in
 *   dist/vendor when that is current (src/prebundled.ts);
 * - runs src/ itself otherwise, with node_modules as it is (so an edit takes
 *   effect at once, at the cost of a slower start until the next build).
 * TASKMESH_FROM_SOURCE=1 always runs src/. docs/architecture.md ("Start-up")
 * has the figures.
 *
 * `taskmesh start` first sizes V8's heap for a long-running node (below).
 */
import module from 'node:module'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * V8's heap sizing for a node. Node sizes the heap for the machine: on a
 * 64-bit host with a few GB of memory V8 lets the young generation grow to
 * 2 x 64 MB under a steady allocation rate, and the old generation to up to
 * 4 times what was live after its last full collection before it collects
 * again. A node running short tasks without a pause keeps about 35-50 MB
 * live, and settled at 310-330 MB RSS that way (docs/architecture.md,
 * "Memory under load"). A node runs instead with
 * - --max-semi-space-size=4: the young generation stays at 2 x 4 MB (8 MB
 *   less than the 2 x 8 MB an idle node starts with);
 * - --heap-growing-percent=50: a full collection runs once the old
 *   generation has grown 50 % past what was live after the last one. A
 *   growth rule, not a cap: a node that needs more heap (large payloads or
 *   results) still gets it;
 * - MALLOC_ARENA_MAX=2 in its environment (unless set): glibc's malloc keeps
 *   at most two arenas instead of one per thread that allocates (V8's
 *   compiler and GC threads, handler threads), each holding freed memory of its own.
 * V8 and glibc read these only when the process starts, so `start` replaces its own
 * process with one given them (process.execve: the same pid, stdio and
 * environment; about 50 ms and 0.06 CPU-seconds more at start, docs/benchmarks.md)
 * before anything else loads. A flag already given
 * to node wins over ours: in its arguments (`node --heap-growing-percent=100
 * bin/taskmesh.js start`) or in NODE_OPTIONS, which allows only the first
 * (NODE_OPTIONS=--max-semi-space-size=64 restores Node's young generation).
 * TASKMESH_HEAP_FLAGS=0 gives none (V8's own sizing). Without process.execve
 * (Windows; Node before 22.15) the node runs with V8's own sizing.
 */
const NODE_HEAP_FLAGS = [
  { flag: '--max-semi-space-size=4', givenAs: /^--max[-_](semi[-_]space|heap)[-_]size\b/ },
  { flag: '--heap-growing-percent=50', givenAs: /^--heap[-_]growing[-_]percent\b/ }
]

// The command comes first: `taskmesh start [options]` (the only options before it, -h and -V, print and exit).
if (process.argv.slice(2).find(arg => !arg.startsWith('-')) === 'start' && process.env.TASKMESH_HEAP_FLAGS !== '0' && typeof process.execve === 'function') {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
  const missing = NODE_HEAP_FLAGS.filter(f => !given.some(arg => f.givenAs.test(arg))).map(f => f.flag)
  if (missing.length > 0 || process.env.MALLOC_ARENA_MAX === undefined) {
    try {
      process.execve(process.execPath, [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)], { MALLOC_ARENA_MAX: '2', ...process.env })
    } catch {
      // Not possible here (e.g. a platform without execve): run with Node's own sizing.
    }
  }
}

module.enableCompileCache?.()
const root = fileURLToPath(new URL('..', import.meta.url))

function mtimeMs (path) {
  try { return statSync(path).mtimeMs } catch { return 0 }
}

/** The newest modification time under `dir` (a folder's changes when a file is added, removed or renamed in it). */
function newestMs (dir) {
  let newest = mtimeMs(dir)
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    newest = Math.max(newest, entry.isDirectory() ? newestMs(path) : mtimeMs(path))
  }
  return newest
}

const builtMs = process.env.TASKMESH_FROM_SOURCE === '1' ? 0 : mtimeMs(join(root, 'dist/.built'))
if (builtMs > 0 && builtMs >= newestMs(join(root, 'src'))) {
  // The bundle was built from these very sources: it holds every package they import.
  const { usePrebundledDependencies } = await import('../dist/prebundled.js')
  usePrebundledDependencies(root)
  await import('../dist/cli.js')
} else {
  await import('../src/cli.ts')
}
