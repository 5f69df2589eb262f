/**
 * Summarises the CPU profiles (`node --cpu-prof`) that nodes wrote during a
 * benchmark scenario: where the main threads' busy time went, by area and by
 * function (self time), as a Markdown section. Only main-thread profiles
 * (thread id 0 in the file name) are read: pool threads mostly wait.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

/** `src/...` for our code, the package name for a dependency, the Node built-in otherwise. */
function areaOf (url: string, fn: string): string {
  if (url.includes('/node_modules/')) {
    const rest = url.split('/node_modules/').at(-1)!.split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  const src = /\/((?:src|scripts)\/.*)$/.exec(url)
  if (src !== null) return src[1]!
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/')
  return url === '' ? fn : url
}

/** Samples in the first `skipMs` of each profile (start-up, joining) are left out, and those after `untilMs`. */
export function summarizeProfiles (dir: string, skipMs = 0, top = 25, untilMs = Infinity): { markdown: string, busyMs: number, idleMs: number } {
  const files = readdirSync(dir).filter(f => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
  const byArea = new Map<string, number>()
  const byFunction = new Map<string, number>()
  let busy = 0
  let idle = 0
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile
    const nodes = new Map(p.nodes.map(n => [n.id, n]))
    let elapsedUs = 0
    for (let i = 0; i < p.samples.length; i++) {
      const { callFrame: cf } = nodes.get(p.samples[i]!)!
      const us = p.timeDeltas[i] ?? 0
      elapsedUs += us
      if (elapsedUs < skipMs * 1000 || elapsedUs > untilMs * 1000) continue
      if (cf.functionName === '(idle)') { idle += us; continue }
      busy += us
      const area = areaOf(cf.url, cf.functionName)
      const key = `${cf.functionName === '' ? '(anonymous)' : cf.functionName} (${area}:${cf.lineNumber + 1})`
      byArea.set(area, (byArea.get(area) ?? 0) + us)
      byFunction.set(key, (byFunction.get(key) ?? 0) + us)
    }
  }
  const rows = (m: Map<string, number>): string[] => [...m].sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([k, us]) => `| ${k} | ${(us / 1000).toFixed(0)} | ${(100 * us / busy).toFixed(1)} % |`)
  const markdown = [
    `Main threads of ${files.length} node(s)${skipMs > 0 ? `, from ${(skipMs / 1000).toFixed(1)} s after start (the cluster had formed)` : ''}${untilMs < Infinity ? ` to ${(untilMs / 1000).toFixed(1)} s` : ''}: ${(busy / 1e6).toFixed(1)} s busy, ${(idle / 1e6).toFixed(1)} s idle.`, '',
    '| area (self time) | ms | share of busy |', '| --- | --- | --- |', ...rows(byArea), '',
    '| function (self time) | ms | share of busy |', '| --- | --- | --- |', ...rows(byFunction)
  ].join('\n')
  return { markdown, busyMs: busy / 1000, idleMs: idle / 1000 }
}
