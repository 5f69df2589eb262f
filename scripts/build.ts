/**
 * npm run build (run by `prepare`, so `npm ci` and `npm install` build it)
 *
 * 1. Compiles src/ to JavaScript in dist/ (tsconfig.build.json; the client's
 *    .d.ts files come with it) and copies the dashboard's static files beside
 *    it: bin/taskmesh.js runs dist/ when it is current, so a start pays no
 *    TypeScript stripping.
 * 2. Bundles the third-party packages that src/ imports (libp2p and its
 * transports, fastify, TypeBox, prom-client, commander, ...) into a few files
 * under dist/vendor/, with a manifest mapping each import specifier to its
 * file. bin/taskmesh.js points those specifiers there (src/prebundled.ts),
 * so a node loads about 60 files instead of about 1,200: resolving, reading
 * and instantiating each module is most of a start-up's cost. Packages that
 * read files beside their own code or start threads from their own files stay
 * outside (EXTERNAL) and load from node_modules as usual. The bundle only
 * goes stale when the dependencies change, and is then left unused.
 * 3. Writes dist/.built, dated when the build began: bin/taskmesh.js runs
 *    dist/ only while no file in src/ is newer.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { build } from 'rolldown'

const ROOT = resolve(import.meta.dirname, '..')
const OUT = join(ROOT, 'dist/vendor')
const began = new Date()

// From scratch: no file of a removed module lingers.
rmSync(join(ROOT, 'dist'), { recursive: true, force: true })
execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit' })
cpSync(join(ROOT, 'src/http/dashboard'), join(ROOT, 'dist/http/dashboard'), { recursive: true })

/** Read files next to their code (__dirname), start workers from their own files, or are only needed on a terminal. */
const EXTERNAL = ['pino', 'pino-pretty', 'piscina', '@fastify/swagger', '@fastify/swagger-ui', 'thread-stream', 'cli-progress']

/** Every bare specifier src/ imports at run time (`import type` is erased, so it is left out). */
function specifiersOf (dir: string, found = new Set<string>()): Set<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) { specifiersOf(path, found); continue }
    if (!entry.name.endsWith('.ts')) continue
    const text = readFileSync(path, 'utf8')
    for (const m of text.matchAll(/^import\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?'([^'./][^']*)'/gm)) found.add(m[1]!)
    for (const m of text.matchAll(/\bimport\(\s*'([^'./][^']*)'\s*\)/g)) found.add(m[1]!)
  }
  return found
}

const packageOf = (spec: string): string => spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/')
const specifiers = [...specifiersOf(join(ROOT, 'src'))]
  .filter(s => !s.startsWith('node:') && !EXTERNAL.includes(packageOf(s)))
  .sort()
/**
 * The names an import of each specifier has in Node (asked of Node itself),
 * so that an entry offers exactly what src/ would get from node_modules.
 * (`export * from` would drop `default`, and every name of a CommonJS package.)
 */
const exportsOf = new Map<string, string[]>()
for (const s of specifiers) exportsOf.set(s, Object.keys(await import(s) as object).filter(n => /^[A-Za-z_$][\w$]*$/.test(n)).sort())
/** One entry per specifier: a file that re-exports the package's whole module namespace. */
const entryName = (spec: string): string => spec.replace(/^@/, '').replace(/[^\w.-]+/g, '_')
const VIRTUAL = '\0vendor-entry:'

rmSync(OUT, { recursive: true, force: true })
mkdirSync(OUT, { recursive: true })
const result = await build({
  cwd: ROOT,
  input: Object.fromEntries(specifiers.map(s => [entryName(s), VIRTUAL + s])),
  platform: 'node',
  external: (id: string) => id.startsWith('node:') || EXTERNAL.some(p => id === p || id.startsWith(`${p}/`)),
  plugins: [{
    name: 'vendor-entries',
    resolveId: (id: string) => id.startsWith(VIRTUAL) ? id : null,
    // The names Node itself gives an import of the package (for CommonJS, those its lexer finds).
    load: (id: string) => id.startsWith(VIRTUAL) ? `export { ${exportsOf.get(id.slice(VIRTUAL.length))!.join(', ')} } from '${id.slice(VIRTUAL.length)}'\n` : null
  }],
  logLevel: 'warn',
  // Whitespace and comments out (less source to read, hash and keep in memory); names and code as they are.
  output: { dir: OUT, format: 'esm', entryFileNames: '[name].js', chunkFileNames: 'chunk-[hash].js', comments: false, minify: { compress: false, mangle: false, codegen: { removeWhitespace: true } } }
})
// Code that finds files beside its own (there is no __dirname in an ES module) must stay EXTERNAL.
const bundled = new Set<string>()
for (const chunk of result.output) {
  if (chunk.type !== 'chunk') continue
  for (const id of Object.keys(chunk.modules)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(id)
    if (m !== null) bundled.add(m[1]!)
  }
  const use = /\b__(dirname|filename)\b/.exec(chunk.code) // comments are stripped: this is code
  if (use !== null) throw new Error(`dist/vendor/${chunk.fileName} uses ${use[0]} (...${chunk.code.slice(Math.max(0, use.index - 150), use.index + 50)}...); add its package to EXTERNAL in scripts/build.ts`)
}
/** Specifier -> entry file; the packages inside the bundle (src/ must not import one of those from node_modules beside it); the packages left outside. */
const manifest = { files: Object.fromEntries(specifiers.map(s => [s, `${entryName(s)}.js`])), bundled: [...bundled].sort(), external: EXTERNAL }
writeFileSync(join(OUT, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
writeFileSync(join(ROOT, 'dist/.built'), `${began.toISOString()}\n`)
utimesSync(join(ROOT, 'dist/.built'), began, began)
console.log(`dist/: src/ compiled; dist/vendor: ${specifiers.length} imports bundled (${specifiers.join(', ')})`)
