/**
 * Prometheus's own linter on real /metrics output. `npm test` installs
 * promtool before the run (scripts/test-tools.sh, the `pretest` script); one
 * on the PATH is used when present.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'

const UNPACKED = resolve(import.meta.dirname, '../../node_modules/.cache/taskmesh-tools/promtool')

function promtoolPath (): string {
  if (spawnSync('promtool', ['--version']).status === 0) return 'promtool'
  if (existsSync(UNPACKED)) return UNPACKED
  throw new Error('promtool is missing: run `sh scripts/test-tools.sh` (npm test runs it first as its pretest script)')
}

/** `promtool check metrics` on a scrape: its exit code and everything it printed (nothing when the metrics are clean). */
export function promtoolCheckMetrics (text: string): { status: number | null, output: string } {
  const r = spawnSync(promtoolPath(), ['check', 'metrics'], { input: text, encoding: 'utf8' })
  if (r.error !== undefined) throw r.error
  return { status: r.status, output: r.stdout + r.stderr }
}
