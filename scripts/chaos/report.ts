/**
 * The report of a chaos run: report.json with every figure (and
 * leader-polls.json, every answer of the leader polls), and report.html,
 * one self-contained page (uPlot and the data inlined, nothing fetched) with
 * a timeline of who led on each host, the faults as markers, and throughput
 * and queue depth over time.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import type { Availability } from './availability.ts'
import type { CheckResult, RunData } from './check.ts'
import type { FaultKind } from './schedule.ts'

const require = createRequire(import.meta.url)

export function writeReport (dir: string, d: RunData, r: CheckResult, seen: Availability, options: { durationMs: number, faults: FaultKind[], rate: number, lanes: number, requestTimeoutMs: number }): { json: string, html: string } {
  const report = {
    seed: d.seed,
    options: { hosts: d.hosts.length, ...options, quorum: d.quorum },
    ok: r.violations.length === 0,
    violations: r.violations,
    tasks: r.counts,
    settledAfterMs: d.settledAfterMs,
    failovers: r.failovers,
    duplicates: r.duplicates,
    schedule: d.schedule,
    faults: d.observed,
    dispatches: r.dispatches,
    leaderChanges: r.leaderChanges,
    memberLost: r.memberLost,
    throughput: r.throughput,
    queueDepth: queueDepth(d),
    client: seen,
    loadStartMs: d.loadStartMs,
    loadEndMs: d.loadEndMs,
    summary: r.summary
  }
  const json = join(dir, 'report.json')
  const html = join(dir, 'report.html')
  writeFileSync(json, JSON.stringify(report, null, 2))
  // Every poll answer, so that the leader-fault figures can be read again (not inlined in the page).
  writeFileSync(join(dir, 'leader-polls.json'), JSON.stringify(d.leaderSamples))
  writeFileSync(html, page(report, d.hosts))
  return { json, html }
}

/** The deepest queue any leader reported, per second. */
function queueDepth (d: RunData): Array<{ second: number, queued: number }> {
  const out = new Map<number, number>()
  for (const s of d.leaderSamples) {
    if (s.queued === null) continue
    const sec = Math.floor(s.atMs / 1000)
    out.set(sec, Math.max(out.get(sec) ?? 0, s.queued))
  }
  return [...out.entries()].sort((a, b) => a[0] - b[0]).map(([second, queued]) => ({ second, queued }))
}

function escape (s: string): string {
  return s.replace(/[&<>"]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
}

function page (report: Record<string, unknown> & { summary: string, ok: boolean }, hosts: string[]): string {
  const uplotJs = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8')
  const uplotCss = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8')
  // `</script>` inside the data would end the script early.
  const data = JSON.stringify({ report, hosts }).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>taskmesh chaos report, seed ${String(report.seed)}</title>
<style>${uplotCss}
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222 }
h1 { font-size: 20px } h2 { font-size: 16px; margin-top: 28px }
.ok { color: #17803d } .bad { color: #b42318 }
pre { background: #f6f6f6; padding: 12px; overflow-x: auto }
table { border-collapse: collapse } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left }
</style></head><body>
<h1>taskmesh chaos run, seed ${String(report.seed)}: <span class="${report.ok ? 'ok' : 'bad'}">${report.ok ? 'all invariants hold' : 'INVARIANTS BROKEN'}</span></h1>
<pre>${escape(report.summary)}</pre>
<h2>Who led, on each host (from the nodes' own logs); faults as red lines</h2><div id="leaders"></div>
<h2>Tasks ended per second, and the leader's queue depth</h2><div id="flow"></div>
<h2>What a client saw: submits accepted and tasks ended per second, by side of a partition (minority: the hosts cut off)</h2><div id="avail"></div>
<table id="client"></table>
<h2>Faults that touched the leader (as target, or inside a partition's minority)</h2><p>The leader in office is read from poll answers that came back before the fault; "noticed" and "dispatching again" from what the hosts not cut off logged after it (a leader in a higher term); "-": the leader kept office (the failure detector forgave a short cut or pause), or it did not happen before the run ended.</p><table id="leaderFaults"><tr><th>at</th><th>fault</th><th>how</th><th>leader (term)</th><th>others noticed after</th><th>a leader dispatching again after (majority side)</th></tr></table>
<h2>Leader changes caused by a heal (within 5 s of it, no other fault in between, none forcing it)</h2><table id="healChanges"><tr><th>healed at</th><th>leader before</th><th>leader after</th><th>after</th></tr></table>
<h2>Leader changes after a heal that a fault forced (the leader's host paused, killed or restarted, or the leader declared dead by silence)</h2><table id="forcedAfterHeal"><tr><th>healed at</th><th>leader before</th><th>leader after</th><th>after</th><th>forced by</th></tr></table>
<h2>Faults</h2><table id="faults"><tr><th>at</th><th>fault</th><th>host</th><th>role</th><th>undone at</th><th>minority</th></tr></table>
<h2>Failovers (faults that hit the leader)</h2><table id="failovers"><tr><th>at</th><th>fault</th><th>detected after</th><th>new leader dispatching after</th></tr></table>
<script>${uplotJs}</script>
<script>
const { report, hosts } = ${data};
const end = Math.ceil(Math.max(report.loadEndMs, ...report.faults.map(f => f.endMs ?? 0)) / 1000) + 5;
const xs = Array.from({ length: end * 4 + 1 }, (_, i) => i / 4);
// A host's line sits at its own row while it believes it leads.
const selfLead = hosts.map(h => report.leaderChanges.filter(c => c.host === h).map(c => ({ t: c.atMs / 1000, leads: c.leader === h, term: c.term })));
const rows = hosts.map((h, i) => xs.map(x => { const last = selfLead[i].filter(c => c.t <= x).at(-1); return last && last.leads ? i + 1 : null }));
const faultLines = { hooks: { draw: [u => {
  const ctx = u.ctx; ctx.save(); ctx.strokeStyle = '#d92d20'; ctx.fillStyle = '#d92d20'; ctx.font = (10 * devicePixelRatio) + 'px sans-serif';
  for (const f of report.faults) {
    const x = u.valToPos(f.atMs / 1000, 'x', true);
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.fillText(f.kind + ' ' + f.host, x + 3, u.bbox.top + 12 * devicePixelRatio);
  }
  ctx.restore();
}] } };
const colors = ['#1570ef', '#12b76a', '#f79009', '#7a5af8', '#ee46bc', '#0e9384', '#e04f16', '#667085'];
new uPlot({ width: Math.min(1100, innerWidth - 60), height: 80 + 36 * hosts.length, plugins: [faultLines],
  scales: { x: { time: false }, y: { range: [0, hosts.length + 1] } },
  axes: [{ label: 'seconds' }, { values: (u, ticks) => ticks.map(t => hosts[t - 1] ?? ''), splits: () => hosts.map((_, i) => i + 1) }],
  series: [{}, ...hosts.map((h, i) => ({ label: h + ' leads', stroke: colors[i % colors.length], width: 10, spanGaps: false }))] },
  [xs, ...rows], document.getElementById('leaders'));
const secs = Array.from({ length: end + 1 }, (_, i) => i);
const ended = secs.map(s => report.throughput.find(t => t.second === s)?.ended ?? 0);
const depth = secs.map(s => report.queueDepth.find(q => q.second === s)?.queued ?? null);
new uPlot({ width: Math.min(1100, innerWidth - 60), height: 260, plugins: [faultLines], scales: { x: { time: false } },
  axes: [{ label: 'seconds' }, { label: 'tasks' }],
  series: [{}, { label: 'ended / s', stroke: '#1570ef', width: 2 }, { label: 'queue depth', stroke: '#f79009', width: 2 }] },
  [secs, ended, depth], document.getElementById('flow'));
const av = report.client.perSecond;
const col = k => secs.map(s => av.find(x => x.second === s)?.[k] ?? 0);
new uPlot({ width: Math.min(1100, innerWidth - 60), height: 260, plugins: [faultLines], scales: { x: { time: false } },
  axes: [{ label: 'seconds' }, { label: 'per second' }],
  series: [{}, { label: 'accepted, majority side', stroke: '#12b76a', width: 2 }, { label: 'accepted, minority', stroke: '#f79009', width: 2 },
    { label: 'ended, majority side', stroke: '#1570ef', width: 2 }, { label: 'ended, minority', stroke: '#b42318', width: 2 }] },
  [secs, col('acceptedMajority'), col('acceptedMinority'), col('endedMajority'), col('endedMinority')], document.getElementById('avail'));
const cell = v => '<td>' + String(v).replace(/[&<>]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]) + '</td>';
const c = report.client, g = c.longestMajorityGap, pc = x => 'p50 ' + (x.p50 ?? '-') + ' ms, p90 ' + (x.p90 ?? '-') + ' ms, p99 ' + (x.p99 ?? '-') + ' ms, max ' + (x.max ?? '-') + ' ms (' + x.count + ' requests)';
for (const [k, v] of [
  ['submit requests', c.requests.total + ' from ' + report.options.lanes + ' lanes (timeout ' + report.options.requestTimeoutMs + ' ms, retried on another host with the same idempotency keys)'],
  ['accepted / refused / unanswered', c.requests.accepted + ' (' + c.requests.acceptedOnRetry + ' on a retry) / ' + c.requests.refused + ' / ' + c.requests.noAnswer],
  ['accepted submit latency during faults', pc(c.latency.duringFaults)],
  ['accepted submit latency outside faults', pc(c.latency.outsideFaults)],
  ['longest majority-side gap: no submit accepted, no task begun, work waiting', g === null ? 'none' : g.ms + ' ms, from +' + (g.fromMs / 1000).toFixed(1) + 's' + (g.during === null ? '' : ' (during ' + g.during + ')')]
]) document.getElementById('client').insertAdjacentHTML('beforeend', '<tr><th>' + k + '</th>' + cell(v) + '</tr>');
for (const f of c.leaderFaults) document.getElementById('leaderFaults').insertAdjacentHTML('beforeend', '<tr>' + cell('+' + (f.atMs / 1000).toFixed(1) + 's') + cell(f.fault) + cell(f.how) + cell(f.leader + ' (' + (f.term ?? '?') + ')') + cell(f.detectionMs === null ? '-' : f.detectionMs + ' ms') + cell(f.recoveryMs === null ? '-' : f.recoveryMs + ' ms') + '</tr>');
for (const h of c.healChanges) document.getElementById('healChanges').insertAdjacentHTML('beforeend', '<tr>' + cell('+' + (h.healedAtMs / 1000).toFixed(1) + 's') + cell(h.fromLeader ?? '-') + cell(h.toLeader ?? '-') + cell(h.afterMs + ' ms') + '</tr>');
for (const h of c.forcedAfterHeal) document.getElementById('forcedAfterHeal').insertAdjacentHTML('beforeend', '<tr>' + cell('+' + (h.healedAtMs / 1000).toFixed(1) + 's') + cell(h.fromLeader ?? '-') + cell(h.toLeader ?? '-') + cell(h.afterMs + ' ms') + cell(h.forcedBy) + '</tr>');
for (const f of report.faults) document.getElementById('faults').insertAdjacentHTML('beforeend', '<tr>' + cell('+' + (f.atMs / 1000).toFixed(1) + 's') + cell(f.kind) + cell(f.host) + cell(f.role) + cell(f.endMs === null ? '-' : '+' + (f.endMs / 1000).toFixed(1) + 's') + cell(f.minority.join(', ')) + '</tr>');
for (const f of report.failovers) document.getElementById('failovers').insertAdjacentHTML('beforeend', '<tr>' + cell('+' + (f.atMs / 1000).toFixed(1) + 's') + cell(f.fault) + cell(f.detectionMs === null ? '-' : f.detectionMs + ' ms') + cell(f.recoveryMs === null ? '-' : f.recoveryMs + ' ms') + '</tr>');
</script></body></html>
`
}
