/**
 * A headless Chromium for the browser tests, from npm: the devDependency
 * `@sparticuz/chromium` ships a brotli-compressed Chromium headless shell
 * inside its package (nothing is downloaded at install or at run time). It is
 * decompressed once per package version into node_modules/.cache/ (written to
 * a temporary name, then renamed, so a concurrent run never starts a half
 * written binary). TASKMESH_CHROMIUM names another binary instead, e.g.
 * Debian's /usr/bin/chromium; the tests need neither that nor anything else
 * beyond `npm ci`.
 */
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import os from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createBrotliDecompress } from 'node:zlib'
import { chromium } from 'playwright-core'
import type { BrowserContext } from 'playwright-core'

const ROOT = resolve(import.meta.dirname, '../..')
const PACKAGE = join(ROOT, 'node_modules/@sparticuz/chromium')

/** The flags every browser test launches with: headless, no sandbox (tests run as root), and no traffic of its own. */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** The path of a Chromium binary: TASKMESH_CHROMIUM if set, else the npm package's, decompressed on first use. */
export async function chromiumPath (): Promise<string> {
  const named = process.env.TASKMESH_CHROMIUM
  if (named !== undefined && named !== '') return named
  const { version } = JSON.parse(readFileSync(join(PACKAGE, 'package.json'), 'utf8')) as { version: string }
  const target = join(ROOT, 'node_modules/.cache/taskmesh-chromium', version, 'chromium')
  if (existsSync(target)) return target
  mkdirSync(dirname(target), { recursive: true })
  const partial = `${target}.${process.pid}.partial`
  try {
    await pipeline(createReadStream(join(PACKAGE, 'bin/chromium.br')), createBrotliDecompress({ chunkSize: 2 ** 21 }), createWriteStream(partial, { mode: 0o755 }))
    renameSync(partial, target)
  } finally {
    rmSync(partial, { force: true })
  }
  return target
}

/** A browser with a fresh profile folder; close() also removes the folder. */
export async function launchChromium (viewport = { width: 1400, height: 900 }): Promise<{ context: BrowserContext, close: () => Promise<void> }> {
  const executablePath = await chromiumPath()
  const profile = mkdtempSync(join(os.tmpdir(), 'taskmesh-chromium-profile-'))
  try {
    // An explicit locale: under LANG=C.UTF-8 this Chromium reports
    // "en-US@posix", which Intl (and so uPlot) rejects as a language tag.
    const context = await chromium.launchPersistentContext(profile, { executablePath, headless: true, args: CHROMIUM_FLAGS, viewport, locale: 'en-US' })
    return {
      context,
      close: async () => {
        try { await context.close() } finally { rmSync(profile, { recursive: true, force: true }) }
      }
    }
  } catch (err) {
    rmSync(profile, { recursive: true, force: true })
    throw err
  }
}
