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
 */
import module from 'node:module'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

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
