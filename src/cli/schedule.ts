/**
 * `taskmesh schedule put | list | get | delete | pause | resume`: recurring
 * schedules through any node's HTTP API (PUT/GET/DELETE /v1/schedules/...).
 */
import { Command, InvalidArgumentError } from 'commander'
import type { Schedule, ScheduleChanged, ScheduleSpec } from '../client/types.ts'
import { CliError, clientFor } from './common.ts'

function wholeNumber (name: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`${name} must be a whole number, got "${raw}"`)
    return Number(raw)
  }
}

const when = (ms: number | null): string => ms === null ? '-' : new Date(ms).toISOString()
const trigger = (s: Schedule): string => s.cron !== undefined ? `cron "${s.cron}"${s.timezone === undefined ? '' : ` (${s.timezone})`}` : `every ${s.everyMs!} ms`

export function formatSchedule (s: Schedule): string {
  return [
    `${s.name}: ${trigger(s)}, fires ${s.task.type}${s.paused ? ' (paused)' : ''}`,
    `  last tick ${when(s.lastTick)}, next tick ${when(s.nextTick)}${s.skippedTicks > 0 ? `, ${s.skippedTicks} ticks skipped` : ''}`
  ].join('\n')
}

function formatTable (rows: readonly Schedule[]): string {
  const head = `${'NAME'.padEnd(20)} ${'TRIGGER'.padEnd(34)} ${'TYPE'.padEnd(12)} ${'STATE'.padEnd(7)} ${'LAST TICK'.padEnd(24)} NEXT TICK`
  return [head, ...rows.map(s => `${s.name.padEnd(20)} ${trigger(s).padEnd(34)} ${s.task.type.padEnd(12)} ${(s.paused ? 'paused' : 'active').padEnd(7)} ${when(s.lastTick).padEnd(24)} ${when(s.nextTick)}`)].join('\n')
}

function printChange (r: ScheduleChanged, json: boolean | undefined, what: string): void {
  process.stdout.write(json === true ? JSON.stringify(r) + '\n' : `${what}: ${formatSchedule(r)}\n  (stored on ${r.stored} of ${r.members} members)\n`)
}

interface PutOptions { node: string, cron?: string, timezone?: string, everyMs?: number, type: string, payload?: string, priority?: number, timeoutMs?: number, maxAttempts?: number, retainMs?: number, paused?: boolean, json?: boolean }

export function scheduleCommand (defaultNode: string): Command {
  const cmd = new Command('schedule')
    .description('Recurring schedules: the leader fires a task at each tick of a cron expression (in a time zone) or every N ms, once per tick across failovers and restarts.')
    .addHelpText('after', `
Examples:
  $ taskmesh schedule put nightly --cron "30 2 * * *" --timezone Europe/Berlin --type echo --payload '{"job": "report"}'
  $ taskmesh schedule put heartbeat --every-ms 60000 --type echo
  $ taskmesh schedule list
  $ taskmesh schedule pause nightly
  $ taskmesh schedule resume nightly
  $ taskmesh schedule delete nightly
  $ taskmesh list --type echo --json | jq 'select(.schedule.name == "nightly")'`)

  cmd.command('put')
    .description('Create or replace a schedule (exactly one of --cron and --every-ms).')
    .argument('<name>', 'schedule name: letters, digits, ".", "_", "-"')
    .option('--node <url>', 'HTTP URL of any node', defaultNode)
    .option('--cron <expr>', 'cron expression: 5 fields (minute hour day month weekday), or 6 with seconds first')
    .option('--timezone <tz>', 'IANA time zone the cron expression is read in (default UTC)')
    .option('--every-ms <ms>', 'a tick every this many ms (at least 100)', wholeNumber('--every-ms'))
    .requiredOption('--type <type>', 'the task type fired at each tick')
    .option('--payload <json>', 'the task\'s payload as JSON (default null)')
    .option('--priority <n>', 'the task\'s priority', (v: string) => Number.parseInt(v, 10))
    .option('--timeout-ms <ms>', 'the task\'s per-attempt time limit', wholeNumber('--timeout-ms'))
    .option('--max-attempts <n>', 'the task\'s attempts', wholeNumber('--max-attempts'))
    .option('--retain-ms <ms>', 'keep each task\'s finished record this long', wholeNumber('--retain-ms'))
    .option('--paused', 'create it paused')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: PutOptions) => {
      let payload: unknown = null
      if (opts.payload !== undefined) {
        try { payload = JSON.parse(opts.payload) } catch (err) { throw new CliError(`--payload is not JSON: ${(err as Error).message}`) }
      }
      const task = {
        type: opts.type,
        payload,
        ...(opts.priority === undefined ? {} : { priority: opts.priority }),
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
        ...(opts.retainMs === undefined ? {} : { retainMs: opts.retainMs })
      }
      const spec: ScheduleSpec = {
        task,
        ...(opts.cron === undefined ? {} : { cron: opts.cron }),
        ...(opts.timezone === undefined ? {} : { timezone: opts.timezone }),
        ...(opts.everyMs === undefined ? {} : { everyMs: opts.everyMs }),
        ...(opts.paused === true ? { paused: true } : {})
      }
      printChange(await clientFor(opts.node).putSchedule(name, spec), opts.json, 'set')
    })

  cmd.command('list')
    .description('Every schedule, with its latest and next tick.')
    .option('--node <url>', 'HTTP URL of any node', defaultNode)
    .option('--json', 'print JSON')
    .action(async (opts: { node: string, json?: boolean }) => {
      const rows = await clientFor(opts.node).schedules()
      process.stdout.write((opts.json === true ? JSON.stringify(rows) : formatTable(rows)) + '\n')
    })

  cmd.command('get')
    .description('One schedule.')
    .argument('<name>', 'schedule name')
    .option('--node <url>', 'HTTP URL of any node', defaultNode)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { node: string, json?: boolean }) => {
      const s = await clientFor(opts.node).schedule(name)
      process.stdout.write((opts.json === true ? JSON.stringify(s) : formatSchedule(s)) + '\n')
    })

  cmd.command('delete')
    .description('Delete a schedule: no more ticks fire (tasks already fired go on).')
    .argument('<name>', 'schedule name')
    .option('--node <url>', 'HTTP URL of any node', defaultNode)
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { node: string, json?: boolean }) => {
      const r = await clientFor(opts.node).deleteSchedule(name)
      process.stdout.write(opts.json === true ? JSON.stringify(r) + '\n' : `deleted ${r.name} (stored on ${r.stored} of ${r.members} members)\n`)
    })

  for (const [verb, description] of [['pause', 'Pause a schedule: no tick fires until it is resumed.'], ['resume', 'Resume a paused schedule: ticks count from now (the pause\'s ticks are not caught up).']] as const) {
    cmd.command(verb)
      .description(description)
      .argument('<name>', 'schedule name')
      .option('--node <url>', 'HTTP URL of any node', defaultNode)
      .option('--json', 'print JSON')
      .action(async (name: string, opts: { node: string, json?: boolean }) => {
        const client = clientFor(opts.node)
        printChange(verb === 'pause' ? await client.pauseSchedule(name) : await client.resumeSchedule(name), opts.json, verb === 'pause' ? 'paused' : 'resumed')
      })
  }
  return cmd
}
