/**
 * Figures of the benchmark scenarios (a median over runs, the runs, an
 * optional ratio to a floor and a target) and the results files: JSON with
 * every run, the machine and each scenario's config, and a Markdown table.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'

export interface Figure { name: string, value: number | null, unit: string, runs: number[], ratio?: { to: string, value: number | null }, target?: string }
export interface Scenario { name: string, config: Record<string, unknown>, figures: Figure[], notes: string[] }

export function median (xs: readonly number[]): number | null {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}
export function pct (xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]!
}
export const round = (x: number | null, d = 2): number | null => x === null ? null : Math.round(x * 10 ** d) / 10 ** d
export function fig (name: string, runs: number[], unit: string, extra: Partial<Figure> = {}): Figure {
  return { name, value: round(median(runs)), unit, runs: runs.map(r => round(r)!), ...extra }
}

/** Writes `<out>/<time>[-quick][-profiled].json` and the Markdown beside it; returns their paths and the table. */
export function writeResults (r: { out: string, startedAt: Date, quick: boolean, profiled: boolean, scenarios: Scenario[], profiles: Array<[string, string]> }): { jsonPath: string, mdPath: string, table: string } {
  const { startedAt, scenarios } = r
  const machine = { cores: os.availableParallelism(), cpu: os.cpus()[0]?.model ?? 'unknown', memoryGB: round(os.totalmem() / 2 ** 30, 1), node: process.version, platform: `${os.type()} ${os.release()}` }
  const result = { startedAt: startedAt.toISOString(), quick: r.quick, profiled: r.profiled, machine, scenarios }
  mkdirSync(r.out, { recursive: true })
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
  const jsonPath = join(r.out, `${stamp}${r.quick ? '-quick' : ''}${r.profiled ? '-profiled' : ''}.json`)
  writeFileSync(jsonPath, JSON.stringify(result, null, 2))
  const lines = [`# taskmesh benchmarks, ${startedAt.toISOString()}${r.quick ? ' (quick)' : ''}`, '', `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGB} GB, Node ${machine.node}, ${machine.platform}.`, '', '| scenario | figure | median | runs | ratio | target |', '| --- | --- | --- | --- | --- | --- |']
  for (const s of scenarios) {
    for (const f of s.figures) lines.push(`| ${s.name} | ${f.name} | ${f.value ?? '-'} ${f.unit} | ${f.runs.join(', ')} | ${f.ratio === undefined ? '' : `${f.ratio.value ?? '-'}x ${f.ratio.to}`} | ${f.target ?? ''} |`)
    for (const n of s.notes) lines.push(`| ${s.name} | note: ${n} | | | | |`)
  }
  lines.push('', 'Config per scenario:', '', ...scenarios.map(s => `- ${s.name}: \`${JSON.stringify(s.config)}\``))
  for (const [name, markdown] of r.profiles) lines.push('', `## CPU profile: ${name}`, '', markdown)
  const mdPath = jsonPath.replace(/\.json$/, '.md')
  writeFileSync(mdPath, lines.join('\n') + '\n')
  return { jsonPath, mdPath, table: lines.slice(4).join('\n') }
}
