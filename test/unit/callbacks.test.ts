import { describe, expect, it } from 'vitest'
import { afterTry, deliveryKey, delivererOf, mergeDelivery, newDelivery, targetsOf } from '../../src/core/callbacks.ts'
import type { DeliveryState } from '../../src/core/callbacks.ts'
import { DeliveryStore } from '../../src/store/delivery-store.ts'

const policy = { maxAttempts: 4, retryBaseMs: 100, retryMaxMs: 250 }
const ended = { id: 't1', status: 'succeeded' as const, callback: { url: 'http://127.0.0.1:9/cb', headers: { authorization: 'Bearer x' } } }

describe('completion callbacks (pure)', () => {
  it('targets the submit\'s callback and each webhook that asks for the ending\'s status, nothing before the task ended', () => {
    const hooks = [{ url: 'http://127.0.0.1:9/all' }, { url: 'http://127.0.0.1:9/failed', events: ['failed' as const] }]
    expect(targetsOf(ended, hooks).map(t => [t.source, t.url])).toEqual([['callback', 'http://127.0.0.1:9/cb'], ['webhook', 'http://127.0.0.1:9/all']])
    expect(targetsOf({ status: 'failed' }, hooks).map(t => t.url)).toEqual(['http://127.0.0.1:9/all', 'http://127.0.0.1:9/failed'])
    expect(targetsOf({ ...ended, status: 'running' }, hooks)).toEqual([])
    expect(targetsOf(ended, [])[0]!.headers).toEqual({ authorization: 'Bearer x' })
  })

  it('names a delivery by task, generation and target, so every holder names it alike and a retried task\'s new ending is a new one', () => {
    const target = { url: 'http://127.0.0.1:9/cb', source: 'callback' as const }
    expect(deliveryKey({ id: 't1' }, target)).toBe(deliveryKey({ id: 't1', retries: 0 }, target))
    expect(deliveryKey({ id: 't1', retries: 1 }, target)).not.toBe(deliveryKey({ id: 't1' }, target))
    expect(deliveryKey({ id: 't1' }, { ...target, source: 'webhook' })).not.toBe(deliveryKey({ id: 't1' }, target))
  })

  it('is delivered by the first live holder: the origin while it lives, else the next copy', () => {
    expect(delivererOf(['o', 'r'], new Set(['o', 'r', 'x']))).toBe('o')
    expect(delivererOf(['o', 'r'], new Set(['r', 'x']))).toBe('r')
    expect(delivererOf(['o', 'r'], new Set(['x']))).toBeNull()
  })

  it('backs off exponentially up to the cap, and gives up after maxAttempts; a 2xx delivers', () => {
    let s = newDelivery('d1', ended, targetsOf(ended, [])[0]!, 1_000)
    expect(s).toMatchObject({ state: 'pending', attempts: 0, nextAtMs: 1_000, event: 'task.succeeded' })
    const nexts: number[] = []
    for (let i = 0; i < 3; i++) {
      s = afterTry(s, { ok: false, status: 500, error: 'boom' }, 2_000, policy)
      nexts.push(s.nextAtMs - 2_000)
    }
    expect(nexts).toEqual([100, 200, 250])
    expect(s).toMatchObject({ state: 'pending', attempts: 3, lastStatus: 500, lastError: 'boom' })
    expect(afterTry(s, { ok: false, status: null, error: 'refused' }, 3_000, policy)).toMatchObject({ state: 'failed', attempts: 4, lastStatus: null })
    expect(afterTry(s, { ok: true }, 3_000, policy)).toMatchObject({ state: 'delivered', attempts: 4, deliveredAt: 3_000, lastStatus: 500 })
  })

  it('merges holders\' states: delivered over failed over pending, then the most tries', () => {
    const base = newDelivery('d1', ended, targetsOf(ended, [])[0]!, 0)
    const tried = afterTry(base, { ok: false, status: 503, error: 'x' }, 10, policy)
    const done = afterTry(tried, { ok: true }, 20, policy)
    const failed: DeliveryState = { ...tried, state: 'failed', attempts: 9 }
    expect(mergeDelivery(base, tried)).toBe(tried)
    expect(mergeDelivery(tried, base)).toBe(tried)
    expect(mergeDelivery(failed, done)).toBe(done)
    expect(mergeDelivery(done, failed)).toBe(done)
    expect(mergeDelivery(tried, failed)).toBe(failed)
    expect(mergeDelivery(undefined, base)).toBe(base)
  })
})

describe('DeliveryStore', () => {
  it('records each delivery once, merges states from other holders, keeps the headers, lists what is due', () => {
    const store = new DeliveryStore(null)
    try {
      const target = targetsOf(ended, [])[0]!
      const d = newDelivery('d1', ended, target, 100)
      // Another holder's state arrives before this node recorded the ending: kept, and the headers filled in later.
      const tried = afterTry(d, { ok: false, status: 500, error: 'x' }, 100, policy)
      expect(store.merge([tried], 100)).toEqual([tried])
      expect(store.add([{ state: d, headers: target.headers }], 150)).toEqual([])
      expect(store.get('d1')).toEqual(tried)
      expect(store.headers('d1')).toEqual({ authorization: 'Bearer x' })
      expect(store.merge([d], 160)).toEqual([])
      expect(store.due(tried.nextAtMs - 1, 10)).toEqual([])
      expect(store.due(tried.nextAtMs, 10).map(x => x.id)).toEqual(['d1'])
      store.postpone(['d1'], 5_000)
      expect(store.due(4_999, 10)).toEqual([])
      expect(store.merge([afterTry(tried, { ok: true }, 200, policy)], 200)[0]).toMatchObject({ state: 'delivered', attempts: 2 })
      expect(store.due(10_000, 10)).toEqual([])
      expect(store.ofTask('t1')).toHaveLength(1)
      expect(store.prune(199)).toBe(0)
      expect(store.prune(201)).toBe(1)
      expect(store.ofTask('t1')).toEqual([])
    } finally {
      store.close()
    }
  })

  it('answers due from memory while nothing pending can be due, and sees every write that makes one due', () => {
    const store = new DeliveryStore(null)
    try {
      const target = targetsOf(ended, [])[0]!
      expect(store.due(1_000, 10)).toEqual([])
      const d = newDelivery('d1', ended, target, 2_000)
      store.add([{ state: d, headers: target.headers }], 2_000)
      expect(store.due(d.nextAtMs - 1, 10)).toEqual([])
      expect(store.due(d.nextAtMs, 10).map(x => x.id)).toEqual(['d1'])
      // Another holder makes it: looked at again at 5,000, not before.
      store.postpone(['d1'], 5_000)
      expect(store.due(4_999, 10)).toEqual([])
      // A state heard from another holder that is due earlier is seen at once.
      const tried = afterTry(store.get('d1')!, { ok: false, status: 500, error: 'x' }, 3_000, policy)
      store.merge([tried], 3_000)
      expect(tried.nextAtMs).toBeLessThan(5_000)
      expect(store.due(tried.nextAtMs, 10).map(x => x.id)).toEqual(['d1'])
      // Delivered: nothing pending, never due again.
      store.merge([afterTry(tried, { ok: true }, 3_500, policy)], 3_500)
      expect(store.due(1e12, 10)).toEqual([])
      // A new one added after the store had found nothing pending is due at its time.
      const d2 = newDelivery('d2', { ...ended, id: 't2' }, target, 6_000)
      store.add([{ state: d2, headers: {} }], 6_000)
      expect(store.due(d2.nextAtMs, 10).map(x => x.id)).toEqual(['d2'])
    } finally {
      store.close()
    }
  })
})
