/**
 * npm run lan -- up --hosts N [--prefix tmlXXXXXX-]   create a simulated LAN (stays up)
 * npm run lan -- down --prefix tmlXXXXXX-             remove one run's namespaces
 * npm run lan -- down --all                           remove every namespace this tool made
 * npm run lan -- list                                 list them
 */
import { Command, CommanderError } from 'commander'
import { LAN_PREFIX, LanError, lanDown, lanNamespaces, lanUp } from './lan.ts'

const program = new Command('lan')
  .description('A simulated LAN of network namespaces joined by a bridge (198.18.0.0/15), for chaos tests and benchmarks.')
  .showHelpAfterError()
  .exitOverride()

program.command('up')
  .description('create N hosts, each a namespace with an address on one bridge, mDNS-ready; prints their names')
  .requiredOption('--hosts <n>', 'number of hosts', v => Number.parseInt(v, 10))
  .option('--prefix <prefix>', `name prefix (default: ${LAN_PREFIX}<random>-)`)
  .option('--json', 'print the LAN as JSON')
  .addHelpText('after', '\nExample:\n  npm run lan -- up --hosts 3\n  ip netns exec tmlab12cd-h1 node src/cli.ts start --listen /ip4/198.18.0.11/tcp/0\n  npm run lan -- down --prefix tmlab12cd-')
  .action((opts: { hosts: number, prefix?: string, json?: boolean }) => {
    const lan = lanUp(opts.hosts, opts.prefix)
    if (opts.json === true) { console.log(JSON.stringify(lan, null, 2)); return }
    console.log(`LAN ${lan.prefix} is up: bridge namespace ${lan.bridgeNs} (controller address ${lan.controllerAddr})`)
    for (const h of lan.hosts) console.log(`  host ${h.index}: namespace ${h.ns}, address ${h.addr} on ${h.dev}`)
    console.log(`\nrun a command on a host:  ip netns exec ${lan.hosts[0]?.ns ?? ''} <command>`)
    console.log(`remove it:                npm run lan -- down --prefix ${lan.prefix}`)
  })

program.command('down')
  .description('remove the namespaces (and links) of one LAN, or of all of them')
  .option('--prefix <prefix>', 'the LAN to remove')
  .option('--all', `remove every namespace whose name starts with "${LAN_PREFIX}"`)
  .action((opts: { prefix?: string, all?: boolean }) => {
    if (opts.prefix === undefined && opts.all !== true) throw new LanError('say which LAN: --prefix <prefix> or --all')
    const removed = lanDown(opts.all === true ? LAN_PREFIX : opts.prefix!)
    console.log(removed.length === 0 ? 'nothing to remove' : `removed ${removed.join(', ')}`)
  })

program.command('list')
  .description('list the namespaces this tool made')
  .action(() => {
    const names = lanNamespaces(LAN_PREFIX)
    console.log(names.length === 0 ? 'no LAN namespaces' : names.join('\n'))
  })

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode)
  if (err instanceof LanError) { console.error(`lan: ${err.message}`); process.exit(1) }
  throw err
}
