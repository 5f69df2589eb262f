// The taskmesh dashboard: follows GET /v1/events (server-sent events) of the
// node that served it, and redraws at most five times a second (events only
// update the state), so it stays fast with many members and thousands of
// task events a second.
/* global uPlot, EventSource */
'use strict'

const MAX_TASKS = 200
const MAX_LOG = 200
const HISTORY = 600

const state = {
  self: null,
  leader: null,
  term: 0,
  members: [],
  tasks: new Map(),
  log: [],
  history: { t: [], succeeded: [], failed: [], queued: [], running: [] },
  connected: false
}

const $ = id => document.getElementById(id)
const esc = s => String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]))
const pct = x => Math.round(Math.max(0, Math.min(1, x)) * 100)
const nameOf = id => state.members.find(m => m.id === id)?.name ?? (id === null ? '' : '…' + id.slice(-6))
const clock = ms => new Date(ms).toLocaleTimeString()

function age (ms) {
  const s = Math.max(0, (Date.now() - ms) / 1000)
  return s < 60 ? `${Math.round(s)} s` : s < 3600 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`
}

/** A progress value a handler reported, as a fraction 0..1 when it is one. */
function fraction (p) {
  if (typeof p === 'number' && p >= 0 && p <= 1) return p
  if (p !== null && typeof p === 'object') {
    for (const k of ['fraction', 'progress', 'ratio', 'done']) if (typeof p[k] === 'number' && p[k] >= 0 && p[k] <= 1) return p[k]
  }
  return null
}

// ---- state updates --------------------------------------------------------

function setCluster (c) {
  if (c === null) return
  state.self = c.self
  state.leader = c.leader
  state.term = c.term
  state.members = c.members
}

function pushSample (s) {
  const h = state.history
  h.t.push(s.t / 1000)
  h.succeeded.push(s.succeeded)
  h.failed.push(s.failed + s.cancelled)
  h.queued.push(s.queued)
  h.running.push(s.running)
  if (h.t.length > HISTORY) for (const k of Object.keys(h)) h[k].shift()
}

function upsertTask (t) {
  state.tasks.delete(t.id)
  state.tasks.set(t.id, t)
  if (state.tasks.size > MAX_TASKS) state.tasks.delete(state.tasks.keys().next().value)
}

function addLog (kind, text) {
  state.log.unshift({ at: Date.now(), kind, text })
  if (state.log.length > MAX_LOG) state.log.length = MAX_LOG
}

// ---- rendering -------------------------------------------------------------

// At most one redraw per animation frame and per RENDER_EVERY_MS, however fast events come.
const RENDER_EVERY_MS = 200
let queued = false
let lastRender = 0
function render () {
  if (queued) return
  queued = true
  setTimeout(() => requestAnimationFrame(() => {
    queued = false
    lastRender = performance.now()
    renderHeader()
    renderMembers()
    renderTasks()
    renderLog()
    renderCharts()
  }), Math.max(0, lastRender + RENDER_EVERY_MS - performance.now()))
}

function renderHeader () {
  $('self').textContent = state.self?.name ?? '…'
  $('leader').textContent = state.leader?.name ?? 'none'
  $('term').textContent = state.leader?.term ?? state.term
  const n = { alive: 0 }
  for (const m of state.members) n[m.status] = (n[m.status] ?? 0) + 1
  $('counts').textContent = Object.entries(n).filter(([k, v]) => k === 'alive' || v > 0).map(([k, v]) => `${v} ${k}`).join(', ')
  const conn = $('conn')
  conn.textContent = state.connected ? 'live' : 'reconnecting'
  conn.className = 'conn ' + (state.connected ? 'on' : 'off')
}

function bar (label, value, max, text) {
  const f = max > 0 ? value / max : 0
  const cls = f >= 1 ? 'full' : f >= 0.75 ? 'hot' : ''
  return `<div class="bar"><span>${label}</span><span class="track"><span class="fill ${cls}" style="width:${pct(f)}%"></span></span><span class="val">${text}</span></div>`
}

// Figures from a member's heartbeats: only while it may still be running. A
// dead (or departed) member's last CPU, memory and free slots are history,
// so its card says when it was last heard instead of showing them as live.
function figures (m) {
  if (m.status !== 'alive' && m.status !== 'suspect' && m.status !== 'draining') {
    return `<div class="gone" data-testid="gone">no live figures: last heard ${esc(age(Date.now() - m.lastSeenMs))} ago</div>`
  }
  const free = Math.max(0, m.capacity - m.running)
  return bar('cpu', m.load.cpu, 1, pct(m.load.cpu) + '%') +
    bar('mem', m.load.memory, 1, pct(m.load.memory) + '%') +
    bar('slots', m.running, m.capacity, `${free} free`) +
    bar('queue', m.queued, Math.max(m.queued, 100), String(m.queued))
}

function renderMembers () {
  $('members').innerHTML = state.members.map(m => {
    const lead = m.id === state.leader?.id
    return `<div class="member ${esc(m.status)}${lead ? ' leader' : ''}" data-member="${esc(m.name)}" data-status="${esc(m.status)}" data-leader="${lead}">
      <div class="top"><span class="name" title="${esc(m.id)}">${esc(m.name)}${m.id === state.self?.id ? ' <small>(this node)</small>' : ''}</span>
        ${lead ? '<span class="badge lead">LEADER</span>' : `<span class="badge ${esc(m.status)}">${esc(m.status)}</span>`}</div>
      ${m.labels ? `<div class="labels" data-testid="labels">${Object.entries(m.labels).map(([k, v]) => `<span>${esc(k)}=${esc(v)}</span>`).join(' ')}</div>` : ''}
      ${figures(m)}
    </div>`
  }).join('')
}

/** A failed or cancelled task can be retried; one that has not ended can be cancelled. */
function action (t) {
  if (t.status === 'failed' || t.status === 'cancelled') return `<button data-action="retry" data-id="${esc(t.id)}" title="queue it again (POST /v1/tasks/:id/retry)">retry</button>`
  if (t.status !== 'succeeded') return `<button data-action="cancel" data-id="${esc(t.id)}" title="DELETE /v1/tasks/:id">cancel</button>`
  return ''
}

function renderTasks () {
  const rows = [...state.tasks.values()].reverse().slice(0, 100)
  $('task-count').textContent = `(the latest ${rows.length} held by this node)`
  $('tasks').innerHTML = rows.map(t => {
    const f = fraction(t.progress)
    const prog = f !== null ? `<span class="prog"><i style="width:${pct(f)}%"></i></span> ${pct(f)}%` : (t.progress === null ? '' : esc(JSON.stringify(t.progress)).slice(0, 40))
    const when = t.status === 'scheduled' && typeof t.runAt === 'number' ? `<small title="runs at ${esc(new Date(t.runAt).toISOString())}"> at ${clock(t.runAt)}</small>` : ''
    return `<tr data-task-id="${esc(t.id)}" data-status="${t.status}"><td class="id" title="${esc(t.id)}">${esc(t.id.slice(0, 8))}</td><td>${esc(t.type)}</td>
      <td><span class="st ${t.status}">${t.status}</span>${when}</td><td>${t.attempts}</td><td>${esc(nameOf(t.worker))}</td><td>${prog}</td><td>${age(t.createdAt)}</td><td>${action(t)}</td></tr>`
  }).join('')
}

// Retry and cancel buttons (one listener: the rows are redrawn). The answer goes to the log; the row follows the task's events.
$('tasks').addEventListener('click', async ev => {
  const b = ev.target.closest('button[data-action]')
  if (b === null) return
  const id = b.dataset.id
  b.disabled = true
  const retry = b.dataset.action === 'retry'
  try {
    const res = await fetch(`/v1/tasks/${encodeURIComponent(id)}${retry ? '/retry' : ''}`, retry ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' } : { method: 'DELETE' })
    const body = await res.json()
    if (res.ok) addLog('task', `${retry ? 'retried' : 'cancel sent for'} ${id.slice(0, 8)}: ${body.status}`)
    else addLog('dead', `${retry ? 'retry' : 'cancel'} of ${id.slice(0, 8)} refused: ${body.error?.message ?? res.status}`)
  } catch (err) {
    addLog('dead', `${retry ? 'retry' : 'cancel'} of ${id.slice(0, 8)} failed: ${err.message}`)
  }
  render()
})

function renderLog () {
  $('log').innerHTML = state.log.map(e => `<li class="${e.kind}"><time>${clock(e.at)}</time>${esc(e.text)}</li>`).join('')
}

// ---- charts (uPlot) --------------------------------------------------------

let charts = null
function chartOpts (el, series) {
  return {
    width: Math.max(300, el.clientWidth - 4),
    height: 200,
    legend: { live: false },
    cursor: { drag: { x: false, y: false } },
    axes: [{ stroke: '#8a96a3', grid: { stroke: '#26303b' } }, { stroke: '#8a96a3', grid: { stroke: '#26303b' } }],
    scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    series: [{}, ...series.map(s => ({ points: { show: false }, ...s }))]
  }
}

function renderCharts () {
  const h = state.history
  if (charts === null) {
    const a = $('throughput')
    const b = $('queue')
    charts = {
      throughput: new uPlot(chartOpts(a, [
        { label: 'succeeded/s', stroke: '#3fb950', fill: 'rgba(63,185,80,.15)', width: 2 },
        { label: 'failed or cancelled/s', stroke: '#f85149', width: 2 }
      ]), [h.t, h.succeeded, h.failed], a),
      queue: new uPlot(chartOpts(b, [
        { label: 'queued (leader)', stroke: '#d29922', fill: 'rgba(210,153,34,.15)', width: 2 },
        { label: 'running (cluster)', stroke: '#58a6ff', width: 2 }
      ]), [h.t, h.queued, h.running], b)
    }
    window.addEventListener('resize', () => {
      charts.throughput.setSize({ width: Math.max(300, a.clientWidth - 4), height: 200 })
      charts.queue.setSize({ width: Math.max(300, b.clientWidth - 4), height: 200 })
    })
    return
  }
  charts.throughput.setData([h.t, h.succeeded, h.failed])
  charts.queue.setData([h.t, h.queued, h.running])
}

// ---- the event stream ------------------------------------------------------

function connect () {
  const es = new EventSource('/v1/events')
  const on = (kind, fn) => es.addEventListener(kind, ev => { fn(JSON.parse(ev.data)); render() })
  es.onopen = () => { state.connected = true; render() }
  es.onerror = () => { state.connected = false; render() }
  on('hello', d => {
    setCluster(d.cluster)
    for (const k of Object.keys(state.history)) state.history[k] = []
    for (const s of d.history) pushSample(s)
    state.tasks.clear()
    for (const t of d.tasks.reverse()) upsertTask(t)
    if (d.cluster?.leader) addLog('leader', `leader is ${d.cluster.leader.name} (term ${d.cluster.leader.term})`)
  })
  on('cluster', d => {
    setCluster(d)
    pushSample(d.sample)
  })
  on('leader', d => {
    state.leader = d.leader
    if (d.leader !== null) state.term = Math.max(state.term, d.leader.term)
    addLog('leader', d.leader === null ? 'no leader' : `new leader ${d.leader.name} (term ${d.leader.term})`)
  })
  on('member', d => {
    if (d.change === 'removed') {
      state.members = state.members.filter(m => m.id !== d.id)
      addLog('dead', `${d.name} forgotten`)
      return
    }
    const m = state.members.find(x => x.id === d.id)
    if (m !== undefined) m.status = d.status
    if (d.change === 'joined') addLog('alive', `${d.name} joined`)
    else addLog(d.status, `${d.name} is ${d.status}${d.reason ? ` (${d.reason})` : ''}`)
  })
  on('task', upsertTask)
}

// Task types and their limits: polled from GET /v1/types (the leader answers) every two seconds.
async function pollTypes () {
  try {
    const res = await fetch('/v1/types')
    if (!res.ok) return
    const { types } = await res.json()
    $('types').innerHTML = types.map(t => `<tr data-type="${esc(t.type)}"><td>${esc(t.type)}</td><td>${t.maxConcurrent ?? '-'}</td><td>${t.perSecond ?? '-'}</td><td>${t.queued}</td><td>${t.running}</td><td>${t.limited}</td></tr>`).join('')
  } catch {}
}

// Recurring schedules: polled from GET /v1/schedules (this node's copy) every two seconds.
async function pollSchedules () {
  try {
    const res = await fetch('/v1/schedules')
    if (!res.ok) return
    const { schedules } = await res.json()
    const when = ms => ms === null ? '-' : new Date(ms).toLocaleTimeString()
    const trigger = s => s.cron !== undefined ? `cron ${s.cron}${s.timezone === undefined ? '' : ` (${s.timezone})`}` : `every ${s.everyMs} ms`
    $('schedules').innerHTML = schedules.map(s => `<tr data-schedule="${esc(s.name)}"><td>${esc(s.name)}</td><td>${esc(trigger(s))}</td><td>${esc(s.task.type)}</td><td>${s.paused ? 'paused' : 'active'}</td><td>${when(s.lastTick)}</td><td>${when(s.nextTick)}</td></tr>`).join('')
  } catch {}
}

connect()
render()
pollTypes()
pollSchedules()
setInterval(pollTypes, 2_000)
setInterval(pollSchedules, 2_000)
setInterval(render, 5_000) // ages in the task table
