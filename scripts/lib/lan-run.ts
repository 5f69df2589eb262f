/**
 * Runs a script inside a fresh simulated LAN's bridge namespace and removes
 * the LAN (and every process left in it) however things end: the script's
 * exit, an error, Ctrl-C, SIGTERM or SIGHUP. Used by chaos and bench.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { lanDown, lanUp } from '../lan/lan.ts'
import type { Lan } from '../lan/lan.ts'

let prefix: string | null = null
let child: ChildProcess | null = null

/** Removes the LAN of this process, if any; says so under `tag`. */
export function cleanupLan (tag: string): void {
  if (prefix === null) return
  const p = prefix
  prefix = null
  const removed = lanDown(p)
  if (removed.length > 0) console.log(`[${tag}] removed the LAN (${removed.length} namespaces)`)
}

/** Creates a LAN of `hosts`, runs `script` with the JSON of `config(lan)` as its argument in the bridge namespace, and resolves with its exit code. */
export async function runOnLan (tag: string, hosts: number, script: string, config: (lan: Lan) => unknown): Promise<number> {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      console.log(`[${tag}] ${sig}: stopping and removing the LAN`)
      child?.kill('SIGKILL')
      cleanupLan(tag)
      process.exit(130)
    })
  }
  process.on('exit', () => { cleanupLan(tag) })
  const lan = lanUp(hosts)
  prefix = lan.prefix
  const cfg = config(lan)
  child = spawn('ip', ['netns', 'exec', lan.bridgeNs, process.execPath, script, JSON.stringify(cfg)], { stdio: 'inherit' })
  const c = child
  const code = await new Promise<number>(resolve => c.on('exit', (exit, sig) => { resolve(exit ?? (sig !== null ? 3 : 1)) }))
  cleanupLan(tag)
  return code
}
