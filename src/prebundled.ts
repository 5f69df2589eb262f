/**
 * Loads our code's dependencies from their prebundled copies in dist/vendor/
 * (scripts/build.ts, run by `npm ci` / `npm install` through `prepare`, or
 * `npm run build`): about 60 files instead of about 1,200 modules from
 * node_modules. Resolving, reading and instantiating a module
 * costs a fraction of a millisecond, and a node imports that many: this is
 * most of a start-up's CPU time and a third of an idle node's memory.
 *
 * Only the executable (bin/taskmesh.js) calls this, and only when it runs the
 * built dist/ (built together with the bundle, from the same sources); tests
 * and scripts that import src/ load node_modules as usual. The bundle is left
 * unused when it is missing, when the installed dependencies changed after it
 * was built, or with TASKMESH_PREBUNDLED=0.
 */
import module from 'node:module'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'

interface Manifest {
  /** Import specifier -> entry file in dist/vendor. */
  files: Record<string, string>
  /** Packages inside the bundle. */
  bundled: string[]
}

const packageOf = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')

function mtimeMs (path: string): number {
  try { return statSync(path).mtimeMs } catch { return 0 }
}

/**
 * Registers a resolve hook that sends src/'s imports of bundled packages to
 * dist/vendor. Returns whether it did (false: dependencies load from
 * node_modules as usual).
 */
export function usePrebundledDependencies (root: string): boolean {
  if (process.env.TASKMESH_PREBUNDLED === '0' || module.registerHooks === undefined) return false
  const dir = join(root, 'dist/vendor')
  const manifestPath = join(dir, 'manifest.json')
  const builtMs = mtimeMs(manifestPath)
  // npm rewrites node_modules/.package-lock.json on every install.
  if (builtMs === 0 || builtMs < mtimeMs(join(root, 'node_modules/.package-lock.json')) || builtMs < mtimeMs(join(root, 'package-lock.json'))) return false
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest
  // Our code runs from src/ or, built, from dist/.
  const ours = [pathToFileURL(join(root, 'src')).href + '/', pathToFileURL(join(root, 'dist')).href + '/']
  const vendorUrl = pathToFileURL(dir).href + '/'
  const fromOurCode = (parent: string | undefined): boolean => parent !== undefined && ours.some(u => parent.startsWith(u)) && !parent.startsWith(vendorUrl)
  const bundled = new Set(manifest.bundled)
  module.registerHooks({
    resolve (specifier, context, next) {
      if (!fromOurCode(context.parentURL) || specifier.startsWith('.') || specifier.startsWith('node:')) return next(specifier, context)
      const file = manifest.files[specifier]
      if (file !== undefined) return { url: vendorUrl + file, format: 'module', shortCircuit: true }
      // A second copy of a bundled package beside the bundle's would break instanceof and shared state.
      if (bundled.has(packageOf(specifier))) {
        throw new Error(`dist/vendor was built before src/ imported '${specifier}': run \`npm run build\` (or set TASKMESH_PREBUNDLED=0)`)
      }
      return next(specifier, context)
    }
  })
  return true
}
