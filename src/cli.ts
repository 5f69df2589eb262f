#!/usr/bin/env node
/**
 * The `taskmesh` command: init | start | status | submit | task | retry | types | schedule | list | demo.
 * Each command imports what it needs when it runs: `status` never loads
 * libp2p, and `start` never loads the submit progress bar.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Command, InvalidArgumentError, Option } from 'commander'
import { ConfigError, DEFAULTS, loadConfig } from './config.ts'
import { StoreInUseError } from './store/exclusive-db.ts'
import { MAX_PRIORITY } from './protocol/constants.ts'
import type { Config } from './config.ts'
import { TaskmeshApiError, TaskmeshClient } from './client/index.ts'
import { CliError, clientFor } from './cli/common.ts'
import type { ListOptions } from './cli/list.ts'
import { scheduleCommand } from './cli/schedule.ts'

function integer (name: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw)) throw new InvalidArgumentError(`${name} must be a whole number, got "${raw}"`)
    return Number(raw)
  }
}

function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** `--label k=v` (start) and `--require k[=v]` (submit; a bare key or `k=*`: any value), repeatable, into one object. */
function labelPairs (flag: string, bareKeyValue: string | null) {
  return (raw: string, previous: Record<string, string> | undefined): Record<string, string> => {
    const eq = raw.indexOf('=')
    if (eq === 0 || (eq < 0 && bareKeyValue === null)) throw new InvalidArgumentError(`${flag} must be KEY=VALUE${bareKeyValue === null ? '' : ' or KEY'}, got "${raw}"`)
    const [key, value] = eq < 0 ? [raw, bareKeyValue!] : [raw.slice(0, eq), raw.slice(eq + 1)]
    return { ...previous, [key]: value }
  }
}

const DEFAULT_NODE = process.env.TASKMESH_NODE ?? `http://${DEFAULTS.httpHost}:${DEFAULTS.httpPort}`
/** How long `--wait` waits for a task to end, unless told (`submit --wait-ms`). */
const DEFAULT_WAIT_MS = 600_000

const program = new Command()
  .name('taskmesh')
  .description('Peer-to-peer task cluster: nodes find each other by mDNS, gossip heartbeats and elect one dispatcher leader.')
  .version('0.1.0')
  .showHelpAfterError()

program.command('init')
  .description('Write a cluster.config.json with a fresh cluster key (in a key file beside it, mode 0600).')
  .option('-o, --out <file>', 'config file to write', 'cluster.config.json')
  .option('--cluster <name>', 'cluster name to put in the config')
  .option('--token', 'also generate an HTTP bearer token into the config (the file is then mode 0600)')
  .option('--force', 'overwrite existing files')
  .addHelpText('after', `
Copy the config and its key file to every node of the cluster (e.g. with scp);
only nodes holding the same key can connect to each other.

Examples:
  $ taskmesh init
  $ taskmesh init --out /etc/taskmesh/cluster.config.json --cluster prod --token
  $ taskmesh start --config /etc/taskmesh/cluster.config.json`)
  .action(async (opts: { out: string, cluster?: string, token?: boolean, force?: boolean }) => {
    const { initCluster } = await import('./cli/init.ts')
    const r = initCluster(opts)
    process.stdout.write(`wrote ${r.configFile}\nwrote ${r.keyFile} (the cluster key, mode 0600: copy it to every node, never commit it)\n` +
      (r.token === null ? '' : 'the config holds an HTTP bearer token (mode 0600); clients send it as TASKMESH_TOKEN\n') +
      `start a node with: taskmesh start --config ${r.configFile}\n`)
  })

program.command('start')
  .description('Run one node in the foreground until SIGINT or SIGTERM (the first drains the node, a second stops it at once).')
  .option('-c, --config <file>', 'config file (default: ./cluster.config.json when present)')
  .option('--cluster <name>', `cluster name; only nodes with the same name see each other (default ${DEFAULTS.cluster})`)
  .option('--name <name>', 'this node\'s name (default: <hostname>-<peer id suffix>)')
  .option('--http-host <host>', `HTTP API address (default ${DEFAULTS.httpHost}; any other needs a token)`)
  .option('--http-port <port>', `HTTP API port (default ${DEFAULTS.httpPort}; 0 picks a free port)`, integer('--http-port'))
  .option('--data-dir <dir>', `folder for the identity key and state (default ${DEFAULTS.dataDir})`)
  .option('--listen <multiaddr>', `libp2p listen address (repeatable; default ${DEFAULTS.listen.join(' ')})`, collect)
  .option('--bootstrap <host:port|multiaddr>', 'peer to dial at start: host:port (DNS name or IP; every address it resolves to) or a multiaddr with /p2p/<id> (repeatable)', collect)
  .option('--capacity <n>', 'task slots (default: CPU cores)', integer('--capacity'))
  .option('--heartbeat-interval-ms <ms>', `heartbeat period (default ${DEFAULTS.heartbeatIntervalMs})`, integer('--heartbeat-interval-ms'))
  .option('--drain-timeout-ms <ms>', `time running attempts get to finish on SIGTERM (default ${DEFAULTS.drainTimeoutMs})`, integer('--drain-timeout-ms'))
  .option('--failure-timeout-ms <ms>', `silence after which a member is dead (default ${DEFAULTS.failureTimeoutMs}; more than 3 heartbeat periods)`, integer('--failure-timeout-ms'))
  .option('--no-mdns', 'do not discover peers by mDNS')
  .option('--label <key=value>', 'a label of this node, e.g. gpu=a100 (repeatable); tasks may require labels', labelPairs('--label', null))
  .addOption(new Option('--placement <strategy>', `how the leader picks among the members that can take a task (default ${DEFAULTS.placement})`).choices(['least-loaded', 'round-robin', 'most-free-slots']))
  .addOption(new Option('--log-level <level>', `log level (default ${DEFAULTS.logLevel})`).choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']))
  .addHelpText('after', `
Precedence: defaults < config file < flags < TASKMESH_* environment variables
(e.g. TASKMESH_HTTP_PORT=7421, TASKMESH_FAILURE_TIMEOUT_MS=3000). Every setting,
its default and its effect: src/config.ts.

Examples:
  $ taskmesh start
  $ taskmesh start --name a1 --http-port 7421 --data-dir ./data/a1
  $ TASKMESH_CLUSTER=staging taskmesh start --config ./cluster.config.json`)
  .action(async (opts: Record<string, unknown>) => {
    const flags: Partial<Config> = {
      cluster: opts.cluster as string | undefined,
      name: opts.name as string | undefined,
      httpHost: opts.httpHost as string | undefined,
      httpPort: opts.httpPort as number | undefined,
      dataDir: opts.dataDir as string | undefined,
      listen: opts.listen as string[] | undefined,
      bootstrap: opts.bootstrap as string[] | undefined,
      capacity: opts.capacity as number | undefined,
      heartbeatIntervalMs: opts.heartbeatIntervalMs as number | undefined,
      failureTimeoutMs: opts.failureTimeoutMs as number | undefined,
      drainTimeoutMs: opts.drainTimeoutMs as number | undefined,
      mdns: opts.mdns === false ? false : undefined,
      labels: opts.label as Record<string, string> | undefined,
      placement: opts.placement as Config['placement'] | undefined,
      logLevel: opts.logLevel as Config['logLevel'] | undefined
    }
    const config = loadConfig({ file: opts.config as string | undefined, flags })
    const { startNode } = await import('./node.ts')
    const node = await startNode(config)
    // A drain (first signal, or POST /v1/drain) ends with the node stopped: exit 0.
    node.drained.then(() => process.exit(0), (err: Error) => {
      node.log.error({ err: err.message }, 'unclean stop')
      process.exit(1)
    })
    let signals = 0
    const shutdown = (signal: string): void => {
      signals++
      if (signals === 1) {
        node.log.info({ signal }, 'stopping: draining first (a second signal stops at once)')
        void node.drain()
      } else if (signals === 2) {
        node.log.warn({ signal }, 'second signal: stopping at once; running attempts will run again elsewhere')
        node.interruptDrain()
      } else {
        process.exit(130)
      }
    }
    process.on('SIGINT', () => { shutdown('SIGINT') })
    process.on('SIGTERM', () => { shutdown('SIGTERM') })
  })

program.command('status')
  .description('Print the cluster\'s members as one node sees them, the leader marked with *.')
  .option('--node <url>', 'HTTP URL of any node', DEFAULT_NODE)
  .option('--json', 'print the raw JSON of GET /v1/cluster')
  .addHelpText('after', `
Examples:
  $ taskmesh status
  $ taskmesh status --node http://127.0.0.1:7421 --json`)
  .action(async (opts: { node: string, json?: boolean }) => {
    const view = await clientFor(opts.node).cluster()
    if (opts.json === true) {
      process.stdout.write(JSON.stringify(view, null, 2) + '\n')
      return
    }
    const { formatMemberTable } = await import('./cli/table.ts')
    process.stdout.write(formatMemberTable(view, process.stdout.isTTY === true) + '\n')
  })

program.command('drain')
  .description('Drain a node, then stop it (as SIGTERM does): it takes no new work, finishes its running attempts within its drainTimeoutMs, hands leadership over and leaves.')
  .option('--node <url>', 'HTTP URL of the node to drain', DEFAULT_NODE)
  .option('--json', 'print the raw JSON of POST /v1/drain')
  .addHelpText('after', `
Examples:
  $ taskmesh drain
  $ taskmesh drain --node http://127.0.0.1:7422`)
  .action(async (opts: { node: string, json?: boolean }) => {
    const r = await clientFor(opts.node).drain()
    process.stdout.write(opts.json === true ? JSON.stringify(r, null, 2) + '\n' : `${r.name} is draining: it stops within ${r.drainTimeoutMs} ms (follow it with taskmesh status)\n`)
  })

program.command('watch')
  .description('Follow the cluster live (members, leader, throughput, task flow) from GET /v1/events; reconnects to another member when the node goes away.')
  .option('--node <url>', 'HTTP URL of any node', DEFAULT_NODE)
  .option('--task <id>', 'only this task\'s events; exits when every watched task has ended (repeatable)', collect)
  .option('--json', 'print each event as one JSON line: {"event", "data"}')
  .addHelpText('after', `
On a terminal the screen is redrawn in place; piped, one line per event.

Examples:
  $ taskmesh watch
  $ taskmesh watch --node http://127.0.0.1:7422
  $ taskmesh watch --task 0f8c2a9e-... --json | jq .data.status`)
  .action(async (opts: { node: string, task?: string[], json?: boolean }) => {
    const { watch } = await import('./cli/watch.ts')
    await watch(opts, process.stdout)
  })

program.command('submit')
  .description('Submit a task (TYPE and a JSON payload), or a JSON-lines file of tasks with --file.')
  .argument('[type]', 'task type, e.g. echo, sleep, hash, fail, or one from the config\'s handlers')
  .argument('[payload]', 'the payload as JSON (default null)')
  .option('--node <url>', 'HTTP URL of any node', DEFAULT_NODE)
  .option('-f, --file <tasks.jsonl>', 'one task per line: {"type", "payload", "priority"?, "timeoutMs"?, "maxAttempts"?, "idempotencyKey"?, "retainMs"?, "runAt"?, "delayMs"?, "ref"?, "dependsOn"?}; a ref names a task for the dependsOn of others in the same 1,000-line batch')
  .option('-w, --wait', 'wait for the task(s) to end and print the result (exit 1 unless all succeeded)')
  .option('--wait-ms <ms>', 'how long --wait waits', integer('--wait-ms'), DEFAULT_WAIT_MS)
  .option('--priority <n>', `higher runs first (-${MAX_PRIORITY}..${MAX_PRIORITY}, default 0)`, (v: string) => Number.parseInt(v, 10))
  .option('--timeout-ms <ms>', 'per-attempt time limit (default: the node\'s defaultTimeoutMs)', integer('--timeout-ms'))
  .option('--max-attempts <n>', 'attempts before the task fails (default: the node\'s defaultMaxAttempts)', integer('--max-attempts'))
  .option('--idempotency-key <key>', 'resubmitting with the same key returns the same task')
  .option('--retain-ms <ms>', 'keep the finished record this long (default: the nodes\' retainFinishedMs)', integer('--retain-ms'))
  .option('--delay-ms <ms>', 'a delayed task: run it this many ms from now (status scheduled until then)', integer('--delay-ms'))
  .option('--run-at <time>', 'a delayed task: run it at this time (Unix ms or ISO 8601, e.g. 2026-12-01T09:00:00Z)')
  .option('--require <key[=value]>', 'run only on a node with this label (a bare KEY or KEY=*: any value; repeatable)', labelPairs('--require', '*'))
  .option('--callback <url>', 'POST the final record to this http(s) URL once the task ends (signed, retried, at least once)')
  .option('--callback-header <name=value>', 'a header sent with each callback delivery (repeatable)', labelPairs('--callback-header', null))
  .option('--depends-on <ids>', 'parents: task ids, comma-separated or the option repeated; the task waits (status waiting) until all succeeded and fails, naming the parent, if one fails or is cancelled', collect)
  .option('--json', 'print JSON')
  .addHelpText('after', `
Examples:
  $ taskmesh submit echo '{"hello": "world"}'
  $ taskmesh submit hash '{"data": "abc"}' --require gpu --require zone=rack2
  $ taskmesh submit echo '"done?"' --callback https://example.com/hooks/taskmesh
  $ taskmesh submit hash '{"data": "abc", "rounds": 100000}' --wait
  $ taskmesh submit echo '"later"' --delay-ms 60000
  $ taskmesh submit echo '"after both"' --depends-on ID1,ID2 --wait
  $ taskmesh submit --file tasks.jsonl --wait`)
  .action(async (type: string | undefined, payload: string | undefined, opts: { node: string, file?: string, wait?: boolean, waitMs: number, priority?: number, timeoutMs?: number, maxAttempts?: number, idempotencyKey?: string, retainMs?: number, require?: Record<string, string>, callback?: string, callbackHeader?: Record<string, string>, dependsOn?: string[], json?: boolean }) => {
    const { submitFile, submitOne } = await import('./cli/submit.ts')
    if (opts.file !== undefined) {
      if (type !== undefined) throw new CliError('give either TYPE [PAYLOAD] or --file, not both')
      await submitFile({ ...opts, file: opts.file }, process.stdout)
      return
    }
    if (type === undefined) throw new CliError('missing TYPE (or --file); see taskmesh submit --help')
    await submitOne(type, payload, opts, process.stdout)
  })

program.command('task')
  .description('Show one task (from any node).')
  .argument('<id>', 'task id')
  .option('--node <url>', 'HTTP URL of any node', DEFAULT_NODE)
  .option('-w, --wait', 'wait until the task ends')
  .option('--json', 'print the raw JSON of GET /v1/tasks/:id')
  .addHelpText('after', `
Examples:
  $ taskmesh task 0f8c2a9e-...
  $ taskmesh task 0f8c2a9e-... --wait --json`)
  .action(async (id: string, opts: { node: string, wait?: boolean, json?: boolean }) => {
    const client = clientFor(opts.node)
    const t = opts.wait === true ? await client.wait(id) : await client.get(id)
    const { formatTask } = await import('./cli/submit.ts')
    process.stdout.write((opts.json === true ? JSON.stringify(t, null, 2) : formatTask(t)) + '\n')
  })

program.command('retry')
  .description('Retry a failed or cancelled task (from any node): the same id, queued again; its attempts continue.')
  .argument('<id>', 'task id')
  .option('--node <url>', 'HTTP URL of any node', DEFAULT_NODE)
  .option('--max-attempts <n>', 'the task\'s new total of attempts, above those it used (default: used + its maxAttempts)', integer('--max-attempts'))
  .option('-w, --wait', 'wait for the task to end and print it (exit 1 unless it succeeded)')
  .option('--json', 'print JSON')
  .addHelpText('after', `
Examples:
  $ taskmesh list --status failed
  $ taskmesh retry 0f8c2a9e-... --wait
  $ taskmesh retry 0f8c2a9e-... --max-attempts 10 --json`)
  .action(async (id: string, opts: { node: string, maxAttempts?: number, wait?: boolean, json?: boolean }) => {
    const client = clientFor(opts.node)
    const r = await client.retry(id, { maxAttempts: opts.maxAttempts })
    if (opts.wait !== true) {
      process.stdout.write(opts.json === true ? JSON.stringify(r) + '\n' : `${r.id} ${r.status} (attempts used ${r.attempts}, at most ${r.maxAttempts} now)\n`)
      return
    }
    const t = await client.wait(id)
    const { formatTask } = await import('./cli/submit.ts')
    process.stdout.write((opts.json === true ? JSON.stringify(t) : formatTask(t)) + '\n')
    if (t.status !== 'succeeded') process.exitCode = 1
  })

program.command('types')
  .description('Task types and their cluster-wide limits, with queued, running and held-back counts (from the leader); with TYPE and a limit flag, sets that type\'s limit.')
  .argument('[type]', 'the type to set a limit on')
  .option('--node <url>', 'HTTP URL of any node', DEFAULT_NODE)
  .option('--max-concurrent <n>', 'attempts of TYPE assigned or running at once across the cluster', integer('--max-concurrent'))
  .option('--per-second <r>', 'attempts of TYPE begun per second across the cluster', (v: string) => Number(v))
  .option('--no-limit', 'remove TYPE\'s limits')
  .option('--json', 'print JSON')
  .addHelpText('after', `
Examples:
  $ taskmesh types
  $ taskmesh types resize --max-concurrent 2 --per-second 10
  $ taskmesh types resize --no-limit`)
  .action(async (type: string | undefined, opts: { node: string, maxConcurrent?: number, perSecond?: number, limit: boolean, json?: boolean }) => {
    const client = clientFor(opts.node)
    const setting = opts.maxConcurrent !== undefined || opts.perSecond !== undefined || !opts.limit
    if (type === undefined) {
      if (setting) throw new CliError('name the TYPE to set a limit on')
      const rows = await client.types()
      if (opts.json === true) { process.stdout.write(JSON.stringify(rows) + '\n'); return }
      const lines = rows.map(r => `${r.type.padEnd(16)} ${String(r.maxConcurrent ?? '-').padStart(14)} ${String(r.perSecond ?? '-').padStart(10)} ${String(r.queued).padStart(7)} ${String(r.running).padStart(7)} ${String(r.limited).padStart(7)}`)
      process.stdout.write([`${'TYPE'.padEnd(16)} ${'MAX CONCURRENT'.padStart(14)} ${'PER SECOND'.padStart(10)} ${'QUEUED'.padStart(7)} ${'RUNNING'.padStart(7)} ${'LIMITED'.padStart(7)}`, ...lines].join('\n') + '\n')
      return
    }
    if (!setting) throw new CliError('give --max-concurrent, --per-second or --no-limit to set TYPE\'s limit (or no TYPE to list)')
    if (opts.perSecond !== undefined && !(opts.perSecond > 0)) throw new CliError('--per-second must be a number above 0')
    const limit = opts.limit ? { ...(opts.maxConcurrent === undefined ? {} : { maxConcurrent: opts.maxConcurrent }), ...(opts.perSecond === undefined ? {} : { perSecond: opts.perSecond }) } : {}
    const r = await client.setTypeLimit(type, limit)
    process.stdout.write(opts.json === true ? JSON.stringify(r) + '\n' : `${r.type}: max concurrent ${r.maxConcurrent ?? 'none'}, per second ${r.perSecond ?? 'none'} (stored on ${r.stored} of ${r.members} members)\n`)
  })

program.addCommand(scheduleCommand(DEFAULT_NODE))

program.command('list')
  .description('List every task in the cluster (from any node), newest submit first.')
  .option('--node <url>', 'HTTP URL of any node', DEFAULT_NODE)
  .option('--status <status>', 'only tasks in this state (scheduled, queued, assigned, running, retrying, succeeded, failed, cancelled)')
  .option('--type <type>', 'only tasks of this type')
  .option('--limit <n>', 'tasks per page (1-1000)', integer('--limit'), 100)
  .option('--all', 'follow the pages to the end')
  .option('--json', 'print one JSON object per task')
  .addHelpText('after', `
Examples:
  $ taskmesh list
  $ taskmesh list --status failed --all
  $ taskmesh list --type hash --json | jq -r .id`)
  .action(async (opts: ListOptions) => {
    const { listTasks } = await import('./cli/list.ts')
    await listTasks(opts, process.stdout, process.stderr)
  })

program.command('demo')
  .description('Start N local nodes (one process each) for trying taskmesh out; Ctrl-C stops them all.')
  .option('-n, --nodes <n>', 'how many nodes', integer('--nodes'), 3)
  .option('--base-port <port>', 'HTTP port of the first node; the others follow', integer('--base-port'), 7421)
  .option('--cluster <name>', 'cluster name', 'taskmesh-demo')
  .addHelpText('after', `
Examples:
  $ taskmesh demo --nodes 5
  then, in another terminal:  taskmesh status --node http://127.0.0.1:7421`)
  .action(async (opts: { nodes: number, basePort: number, cluster: string }) => {
    if (opts.nodes < 1 || opts.nodes > 50) throw new InvalidArgumentError('--nodes must be between 1 and 50')
    const dir = await mkdtemp(join(os.tmpdir(), 'taskmesh-demo-'))
    // The executable (src/ or dist/ alike: bin/ is beside both).
    const cli = fileURLToPath(new URL('../bin/taskmesh.js', import.meta.url))
    const children: ChildProcess[] = []
    for (let i = 1; i <= opts.nodes; i++) {
      const args = [cli, 'start', '--cluster', opts.cluster, '--name', `demo-${i}`, '--http-port', String(opts.basePort + i - 1),
        '--data-dir', join(dir, `node-${i}`), '--listen', '/ip4/127.0.0.1/tcp/0', '--log-level', 'warn']
      children.push(spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] }))
    }
    const urls = children.map((_, i) => `http://127.0.0.1:${opts.basePort + i}`)
    process.stdout.write(`started ${opts.nodes} nodes of cluster "${opts.cluster}" (data in ${dir}, removed when they stop):\n${urls.map((u, i) => `  demo-${i + 1}  ${u}  pid ${children[i]!.pid ?? '?'}`).join('\n')}\n`)
    const stopAll = (): void => { for (const c of children) c.kill('SIGTERM') }
    process.on('SIGINT', stopAll)
    process.on('SIGTERM', stopAll)
    let exited = 0
    for (const c of children) {
      c.on('exit', () => {
        if (++exited < children.length) return
        rmSync(dir, { recursive: true, force: true }) // a demo's data is thrown away with it
        process.exit(0)
      })
    }
    // Print the table once every node sees all N members alive and names the
    // same leader (one node's view alone can be ahead of the others').
    const clients = urls.map(u => new TaskmeshClient({ nodes: u, timeoutMs: 5_000 }))
    const deadline = Date.now() + 30_000
    while (Date.now() < deadline) {
      await new Promise(resolve => setTimeout(resolve, 300))
      const views = await Promise.all(clients.map(async c => await c.cluster().catch(() => undefined)))
      const leader = views[0]?.leader
      const agreed = leader != null && views.every(v => v !== undefined && v.leader?.id === leader.id &&
        v.members.filter(m => m.status === 'alive').length === opts.nodes)
      if (agreed) {
        const { formatMemberTable } = await import('./cli/table.ts')
        process.stdout.write(formatMemberTable(views[0]!, process.stdout.isTTY === true) + '\nPress Ctrl-C to stop.\n')
        return
      }
    }
    process.stdout.write('the nodes have not agreed on a leader within 30 s; see their logs above\n')
  })

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof CliError || err instanceof TaskmeshApiError || err instanceof InvalidArgumentError || err instanceof StoreInUseError) {
    process.stderr.write(`taskmesh: ${err.message}\n`)
    process.exit(2)
  }
  process.stderr.write(`taskmesh: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
