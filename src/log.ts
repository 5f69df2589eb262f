/** Structured logs (pino): JSON lines when piped, readable lines on a terminal. */
import { createRequire } from 'node:module'
import { pino } from 'pino'
import type { Logger } from 'pino'
import type { PrettyOptions, PrettyStream } from 'pino-pretty'

export function createLogger (level: string, opts: { name?: string, pretty?: boolean } = {}): Logger {
  const usePretty = opts.pretty ?? process.stdout.isTTY === true
  const base = { level, base: opts.name === undefined ? {} : { node: opts.name } }
  if (!usePretty) return pino(base)
  // Loaded only for a terminal: a node started by a service manager or a script never needs it.
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: PrettyOptions) => PrettyStream
  return pino(base, pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true }))
}
