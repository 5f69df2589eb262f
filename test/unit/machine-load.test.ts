import { describe, expect, it } from 'vitest'
import { LOAD_SAMPLE_MS, machineLoad } from '../../src/runtime/load.ts'

describe('machineLoad', () => {
  it('samples the machine at most once per LOAD_SAMPLE_MS, and again after it (or when the clock went back)', () => {
    const first = machineLoad(1_000_000)
    expect(first.cpu).toBeGreaterThanOrEqual(0)
    expect(first.memory).toBeGreaterThan(0)
    expect(first.memory).toBeLessThanOrEqual(1)
    // The same sample (same object) within the window: no /proc read.
    expect(machineLoad(1_000_000 + LOAD_SAMPLE_MS - 1)).toBe(first)
    // A new sample after it, and after the wall clock stepped back.
    const second = machineLoad(1_000_000 + LOAD_SAMPLE_MS)
    expect(second).not.toBe(first)
    expect(machineLoad(10)).not.toBe(second)
  })
})
