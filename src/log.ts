/** Structured logs (pino): JSON lines when piped, readable lines on a terminal. */
import { pino } from 'pino'
import type { Logger } from 'pino'
import pretty from 'pino-pretty'

export function createLogger (level: string, opts: { name?: string, pretty?: boolean } = {}): Logger {
  const usePretty = opts.pretty ?? process.stdout.isTTY === true
  const base = { level, base: opts.name === undefined ? {} : { node: opts.name } }
  if (!usePretty) return pino(base)
  return pino(base, pretty({ colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname', sync: true }))
}
