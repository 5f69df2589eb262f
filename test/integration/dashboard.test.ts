/**
 * The dashboard in a real browser: headless Chromium (from the npm package
 * @sparticuz/chromium, see test/support/chromium.ts; driven by
 * playwright-core) against three real nodes. Saves screenshots to
 * test-results/ (git-ignored).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { launchChromium } from '../support/chromium.ts'
import { nodesPerTest, agreedLeader, waitFor } from '../support/nodes.ts'

const RESULTS = resolve(import.meta.dirname, '../../test-results')

describe('the dashboard in headless Chromium', () => {
  const set = nodesPerTest()
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined
  afterEach(async () => {
    await browser?.close()
    browser = undefined
  })

  it('shows the three members, the leader and a submitted task live, keeps up with 2,000 tasks, and shows the new leader after the leader is killed', async () => {
    const nodes = [await set.start({ name: 'dash1' }), await set.start({ name: 'dash2' }), await set.start({ name: 'dash3', args: ['--label', 'gpu=a100'] })]
    const first = await waitFor(async () => await agreedLeader(nodes, 3), 10_000, 'three nodes to agree')
    const leader = nodes.find(n => n.id === first.id)!
    const viewed = nodes.find(n => n !== leader)!

    browser = await launchChromium({ width: 1400, height: 900 })
    const page = await browser.context.newPage()
    const errors: string[] = []
    page.on('pageerror', err => { errors.push(err.message) })
    await page.goto(viewed.url + '/')

    // Three members, the leader marked on its card and in the header.
    await page.locator('[data-member]').nth(2).waitFor({ timeout: 10_000 })
    expect(await page.locator('[data-member]').count()).toBe(3)
    for (const n of nodes) expect(await page.locator(`[data-member="${n.name}"]`).getAttribute('data-status')).toBe('alive')
    await page.locator(`[data-member="${leader.name}"][data-leader="true"]`).waitFor({ timeout: 5_000 })
    expect(await page.locator('[data-leader="true"]').count()).toBe(1)
    expect(await page.locator('[data-testid="leader"]').textContent()).toBe(leader.name)
    // A member's labels are on its card.
    expect(await page.locator('[data-member="dash3"] [data-testid="labels"]').textContent()).toBe('gpu=a100')
    expect(await page.locator('[data-member="dash1"] [data-testid="labels"]').count()).toBe(0)

    // A task submitted to the viewed node appears and runs to its end, live.
    const res = await fetch(`${viewed.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'sleep', payload: { ms: 1_500 } }) })
    expect(res.status).toBe(202)
    const { id } = await res.json() as { id: string }
    await page.locator(`[data-task-id="${id}"]`).waitFor({ timeout: 5_000 })
    await page.locator(`[data-task-id="${id}"][data-status="succeeded"]`).waitFor({ timeout: 15_000 })
    // 2,000 tasks through the viewed node: the page keeps up and stays responsive.
    let flooding = true
    const roundTrips: number[] = []
    const probe = (async () => {
      while (flooding) {
        const t0 = Date.now()
        await page.locator('[data-testid="leader"]').textContent()
        roundTrips.push(Date.now() - t0)
        await new Promise(resolve => setTimeout(resolve, 100))
      }
    })()
    for (let b = 0; b < 2; b++) {
      const batch = await fetch(`${viewed.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: Array.from({ length: 1_000 }, (_, i) => ({ type: 'echo', payload: { b, i } })) }) })
      expect(batch.status).toBe(202)
    }
    await waitFor(async () => {
      const text = await (await fetch(`${viewed.url}/metrics`)).text()
      return Number(/^taskmesh_tasks\{state="succeeded",type="echo"\} (\d+)$/m.exec(text)?.[1] ?? 0) >= 2_000
    }, 60_000, '2,000 echo tasks to succeed', 250)
    await waitFor(async () => await page.locator('[data-task-id][data-status="succeeded"]').count() === 100, 5_000, 'the table to show 100 finished tasks')
    flooding = false
    await probe
    expect(Math.max(...roundTrips), roundTrips.join(' ')).toBeLessThan(1_000)
    // Give the charts a few one-second samples before the picture.
    await waitFor(async () => await page.locator('.uplot').count() === 2, 5_000, 'two charts')
    mkdirSync(RESULTS, { recursive: true })
    const shot = resolve(RESULTS, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    console.log(`dashboard screenshot: ${shot}`)

    // Kill the leader: the dashboard shows a new one (a survivor) without a reload.
    leader.signal('SIGKILL')
    const survivors = nodes.filter(n => n !== leader)
    await waitFor(async () => survivors.map(n => n.name).includes(await page.locator('[data-testid="leader"]').textContent() ?? ''), 5_000, 'the dashboard to show a surviving leader', 20)
    const next = await waitFor(async () => await agreedLeader(survivors, 2), 5_000, 'a new leader')
    expect(next.term).toBeGreaterThan(first.term)
    await page.locator(`[data-member="${survivors.find(n => n.id === next.id)!.name}"][data-leader="true"]`).waitFor({ timeout: 5_000 })
    await page.locator(`[data-member="${leader.name}"][data-status="dead"]`).waitFor({ timeout: 5_000 })
    // The dead member's card shows when it was last heard, not its last CPU bar and free slots as if live.
    const dead = page.locator(`[data-member="${leader.name}"]`)
    expect(await dead.locator('.bar').count()).toBe(0)
    expect(await dead.textContent()).not.toMatch(/free|cpu|%/)
    expect(await dead.locator('[data-testid="gone"]').textContent()).toMatch(/^no live figures: last heard \d+ s ago$/)
    for (const n of survivors) expect(await page.locator(`[data-member="${n.name}"] .bar`).count()).toBe(4)
    expect(await page.locator('[data-testid="log"]').textContent()).toMatch(/new leader/)
    const after = resolve(RESULTS, 'dashboard-after-failover.png')
    await page.screenshot({ path: after, fullPage: true })
    console.log(`dashboard screenshot after the failover: ${after}`)
    expect(errors).toEqual([])
  })

  it('retries a failed task and cancels a scheduled one with the buttons of its row, the rows follow, and shows the task types\' limits and the recurring schedules', async () => {
    const dir = await set.tempDir()
    const config = join(dir, 'cluster.config.json')
    writeFileSync(config, JSON.stringify({ handlers: { flaky: resolve(import.meta.dirname, '../fixtures/flaky-handler.js') } }))
    const nodes = [await set.start({ name: 'btn1', args: ['--config', config] }), await set.start({ name: 'btn2', args: ['--config', config] })]
    await waitFor(async () => await agreedLeader(nodes, 2), 10_000, 'two nodes to agree')
    const viewed = nodes[0]!
    browser = await launchChromium({ width: 1400, height: 900 })
    const page = await browser.context.newPage()
    const errors: string[] = []
    page.on('pageerror', err => { errors.push(err.message) })
    await page.goto(viewed.url + '/')
    await page.locator('[data-member]').nth(1).waitFor({ timeout: 10_000 })
    const submit = async (body: unknown): Promise<string> => {
      const res = await fetch(`${viewed.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      expect(res.status).toBe(202)
      return (await res.json() as { id: string }).id
    }
    const flaky = await submit({ type: 'flaky', payload: { failThrough: 1 }, maxAttempts: 1 })
    const later = await submit({ type: 'echo', payload: 'later', delayMs: 60_000 })
    const row = (id: string) => page.locator(`[data-task-id="${id}"]`)
    await page.locator(`[data-task-id="${flaky}"][data-status="failed"]`).waitFor({ timeout: 10_000 })
    await page.locator(`[data-task-id="${later}"][data-status="scheduled"]`).waitFor({ timeout: 5_000 })
    expect(await row(flaky).locator('button[data-action="cancel"]').count()).toBe(0)
    await row(flaky).locator('button[data-action="retry"]').click()
    await page.locator(`[data-task-id="${flaky}"][data-status="succeeded"]`).waitFor({ timeout: 10_000 })
    const rec = await (await fetch(`${nodes[1]!.url}/v1/tasks/${flaky}`)).json() as { status: string, attempts: number, retries: number }
    expect(rec).toMatchObject({ status: 'succeeded', attempts: 2, retries: 1 })
    expect(await row(flaky).locator('button').count()).toBe(0)
    await row(later).locator('button[data-action="cancel"]').click()
    await page.locator(`[data-task-id="${later}"][data-status="cancelled"]`).waitFor({ timeout: 5_000 })
    await row(later).locator('button[data-action="retry"]').waitFor({ timeout: 5_000 })
    expect(await page.locator('[data-testid="log"]').textContent()).toMatch(/retried [0-9a-f]{8}: queued/)
    // A type's limit set on the other node shows in the types table.
    const limit = await fetch(`${nodes[1]!.url}/v1/types/flaky`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ maxConcurrent: 3 }) })
    expect(limit.status).toBe(200)
    await page.locator('[data-type="flaky"]').waitFor({ timeout: 5_000 })
    expect(await page.locator('[data-type="flaky"] td').allTextContents()).toEqual(['flaky', '3', '-', '0', '0', '0'])
    // A recurring schedule set on the other node shows in the schedules table.
    const schedule = await fetch(`${nodes[1]!.url}/v1/schedules/hourly`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ cron: '0 * * * *', timezone: 'Europe/Berlin', task: { type: 'echo' }, paused: true }) })
    expect(schedule.status).toBe(200)
    await page.locator('[data-schedule="hourly"]').waitFor({ timeout: 5_000 })
    expect(await page.locator('[data-schedule="hourly"] td').allTextContents()).toEqual(['hourly', 'cron 0 * * * * (Europe/Berlin)', 'echo', 'paused', '-', '-'])
    mkdirSync(RESULTS, { recursive: true })
    await page.screenshot({ path: resolve(RESULTS, 'dashboard-retry-cancel.png'), fullPage: true })
    expect(errors).toEqual([])
  })
})
