import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
const [dir, skipArg] = process.argv.slice(2)
const skip = Number(skipArg) * 1000
const cats = new Map(); let busy = 0
const catOf = (cf) => {
  const u = cf.url, f = cf.functionName
  if (f === '(garbage collector)') return 'GC'
  if (/store\//.test(u)) return 'store (sqlite calls + our store code)'
  if (/noise|crypto|chacha/i.test(u + f)) return 'noise/crypto'
  if (/libp2p|yamux|it-|chunk-|uint8/i.test(u) && !/chunk-Bjn|chunk-D25|chunk-DhP/.test(u)) return 'libp2p/yamux/streams (vendor)'
  if (/chunk-Bjn|chunk-D25|chunk-DhP|ajv/.test(u)) return 'ajv/fjs'
  if (/fastify|_http|http_|node:_http|llhttp|parserOn/.test(u + f)) return 'fastify/http'
  if (/node:net|stream|writeBuffer|writeUtf8|writev|onStreamRead/.test(u + f)) return 'node streams/sockets'
  if (/prom-client|metrics/.test(u)) return 'metrics'
  if (/pino|log\.js/.test(u)) return 'logging'
  if (/messageport|event_target|postMessage|worker_threads|exec\//.test(u + f)) return 'pool hop (exec, MessagePort)'
  if (/protocol\//.test(u)) return 'protocol (JSON encode/decode + check)'
  if (/runtime\/|core\//.test(u)) return 'runtime/core (our task path)'
  if (/timers|task_queues|runMicrotasks|nextTick/.test(u + f)) return 'timers/microtasks'
  if (/gossipsub|membership|cluster/.test(u)) return 'membership/gossip'
  if (f === '(program)') return '(program)'
  return 'other: ' + (u.replace(/.*\/(dist|node_modules)\//, '').split(':')[0] || f)
}
for (const f of readdirSync(dir).filter(f => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))) {
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8'))
  const nodes = new Map(p.nodes.map(n => [n.id, n])); let t = 0
  for (let i = 0; i < p.samples.length; i++) { const us = p.timeDeltas[i] ?? 0; t += us; if (t < skip) continue
    const cf = nodes.get(p.samples[i]).callFrame; if (cf.functionName === '(idle)') continue; busy += us
    const c = catOf(cf); cats.set(c, (cats.get(c) ?? 0) + us) }
}
console.log('busy ms', (busy / 1000).toFixed(0))
for (const [k, us] of [...cats].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((us / 1000).toFixed(0).padStart(6), (100 * us / busy).toFixed(1).padStart(5) + '%', k)
