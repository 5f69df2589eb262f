/** Renders GET /v1/cluster as a terminal table. */

export interface ClusterView {
  self: { id: string, name: string }
  leader: { id: string, name: string, term: number } | null
  members: Array<{ id: string, name: string, http: string, status: string, capacity: number, running: number, queued: number, load: { cpu: number, memory: number }, lastSeenMs: number }>
}

const colours = { alive: '\x1b[32m', suspect: '\x1b[33m', draining: '\x1b[36m', left: '\x1b[2m', dead: '\x1b[31m', reset: '\x1b[0m' } as const

/** Dead or left: the member's last load and task counts are history. */
function gone (status: string): boolean {
  return status === 'dead' || status === 'left'
}

export function formatMemberTable (view: ClusterView, colour: boolean): string {
  const header = ['', 'NAME', 'ID', 'STATUS', 'SLOTS', 'RUNNING', 'QUEUED', 'CPU', 'MEM', 'LAST SEEN', 'HTTP']
  const rows = view.members.map(m => {
    // A dead or departed member's last load and task counts are history: shown as '-', not as if live.
    const live = !gone(m.status)
    return [
      m.id === view.leader?.id ? '*' : '',
      m.name + (m.id === view.self.id ? ' (self)' : ''),
      '…' + m.id.slice(-8),
      m.status,
      String(m.capacity),
      live ? String(m.running) : '-',
      live ? String(m.queued) : '-',
      live ? `${Math.round(m.load.cpu * 100)}%` : '-',
      live ? `${Math.round(m.load.memory * 100)}%` : '-',
      m.id === view.self.id ? '-' : `${m.lastSeenMs} ms`,
      m.http
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()
  const body = rows.map((r, i) => {
    const text = line(r)
    const status = view.members[i]!.status as keyof typeof colours
    return colour && status in colours ? `${colours[status]}${text}${colours.reset}` : text
  })
  const leader = view.leader === null ? 'leader: none yet' : `leader: ${view.leader.name} (term ${view.leader.term})`
  return [leader, line(header), ...body, totalsLine(view)].join('\n')
}

/** Member counts by status, and slots and tasks across the live members. */
export function totalsLine (view: ClusterView): string {
  const n = { alive: 0, suspect: 0, draining: 0, left: 0, dead: 0 } as Record<string, number>
  let slots = 0
  let running = 0
  let queued = 0
  for (const m of view.members) {
    n[m.status] = (n[m.status] ?? 0) + 1
    if (gone(m.status)) continue
    slots += m.capacity
    running += m.running
    queued += m.queued
  }
  const leaving = (n.draining ?? 0) + (n.left ?? 0) > 0 ? `, ${n.draining} draining, ${n.left} left` : ''
  return `members: ${n.alive} alive, ${n.suspect} suspect${leaving}, ${n.dead} dead; tasks: ${running} running, ${queued} queued; slots: ${Math.max(0, slots - running)} of ${slots} free`
}
