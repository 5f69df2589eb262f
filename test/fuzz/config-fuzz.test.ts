/**
 * The config loader with random files and environments: it either returns a
 * config every field of which satisfies the schema, or throws a ConfigError
 * naming what is wrong. Never another error, never a partial config.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { Value } from '@sinclair/typebox/value'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError, ConfigSchema, defaults, envName, loadConfig } from '../../src/config.ts'

const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-config-fuzz-'))
afterAll(() => { rmSync(dir, { recursive: true, force: true }) })
const fields = Object.keys(defaults())

/** A value of roughly the right shape for a field, or anything at all. */
const fieldValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
  fc.constantFrom(0, -1, 1, 20, 100, 250, 1500, 65535, 65536, 1e9, null, true, false, '', '127.0.0.1', '0.0.0.0', '::1', 'info', 'loud', ['/ip4/0.0.0.0/tcp/0'], {}, { echo: './x.js' }, { '__proto__': './x.js' }, 'x'.repeat(2000), './missing.key'),
  fc.string({ unit: 'grapheme', maxLength: 80 })
)

const configObject = fc.dictionary(fc.oneof(fc.constantFrom(...fields), fc.constantFrom('__proto__', 'constructor', 'prototype', 'httpport', 'Cluster'), fc.string({ maxLength: 12 })), fieldValue, { maxKeys: 8 })

const fileText = fc.oneof(
  { weight: 5, arbitrary: configObject.map(o => JSON.stringify(o)) },
  { weight: 1, arbitrary: configObject.map(o => JSON.stringify(o)).chain(s => fc.nat({ max: s.length }).map(n => s.slice(0, n))) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 300 }) },
  { weight: 1, arbitrary: fc.jsonValue().map(v => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom('', 'null', '[]', '{}', '{"__proto__": {"polluted": true}}', '\uFEFF{}', '{"cluster": "a", "cluster": "b"}', '['.repeat(50_000)) }
)

const env = fc.dictionary(fc.constantFrom(...fields.map(envName), 'TASKMESH_TOKEN', 'TASKMESH_UNKNOWN'), fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('true', 'false', 'null', '0', '-5', '99999999999999999999', '{"echo": "./e.js"}', '{', 'a,b,,c')), { maxKeys: 4 })

describe('config loader fuzzing', () => {
  it('returns a valid config or throws a ConfigError for any file and environment', () => {
    let i = 0
    let accepted = 0
    fc.assert(fc.property(fileText, env, (text, vars) => {
      const file = join(dir, `c${i++ % 50}.json`)
      writeFileSync(file, text)
      let config
      try {
        config = loadConfig({ file, env: vars, cwd: dir })
      } catch (err) {
        expect(err, String((err as Error).stack)).toBeInstanceOf(ConfigError)
        expect((err as Error).message.length).toBeGreaterThan(0)
        return
      }
      accepted++
      const { baseDir: _b, clusterKey: _k, ...fileFields } = config
      expect(Value.Check(ConfigSchema, { ...fileFields, capacity: fileFields.capacity })).toBe(true)
      expect(config.failureTimeoutMs).toBeGreaterThan(3 * config.heartbeatIntervalMs)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    }), { numRuns: 3_000 })
    expect(accepted).toBeGreaterThan(0)
  })
})
