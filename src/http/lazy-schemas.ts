/**
 * fastify's own schema compilers (Ajv for request validation,
 * fast-json-stringify for replies), each route's compiled on the first
 * request that needs it instead of all of them when the server starts.
 * Compiling every route's schemas (and Ajv's meta-schemas) is about 100 ms of
 * a node's start-up; a route pays its own few milliseconds once, on first use.
 * What is compiled, and how it validates and serializes, is unchanged.
 */
import ajvCompiler from '@fastify/ajv-compiler'
import serializerCompiler from '@fastify/fast-json-stringify-compiler'
import type { FastifyServerOptions } from 'fastify'

type CompilersFactory = NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>
type ValidatorFactory = NonNullable<CompilersFactory['buildValidator']>
type SerializerFactory = NonNullable<CompilersFactory['buildSerializer']>

/**
 * A function standing for `build()`'s, built on its first use. fastify reads
 * an Ajv validator's `errors` after a failed check, and its `schemaEnv` (to
 * pass the parent object) before each call: both are forwarded, the latter
 * building the validator.
 */
function deferred<F extends (...args: never[]) => unknown> (build: () => F): F {
  let fn: F | undefined
  const get = (): F => (fn ??= build())
  const call = ((...args: Parameters<F>) => get()(...args)) as F
  Object.defineProperty(call, 'errors', { get: () => (fn as { errors?: unknown } | undefined)?.errors })
  Object.defineProperty(call, 'schemaEnv', { get: () => (get() as { schemaEnv?: unknown }).schemaEnv })
  return call
}

export function lazySchemaCompilers (): CompilersFactory {
  const buildValidator = ajvCompiler()
  const buildSerializer = serializerCompiler.SerializerSelector()
  const validators: ValidatorFactory = (externalSchemas, options) => {
    let compiler: ReturnType<ValidatorFactory> | undefined
    return route => deferred(() => (compiler ??= buildValidator(externalSchemas, options))(route))
  }
  const serializers: SerializerFactory = (externalSchemas, options) => {
    let compiler: ReturnType<SerializerFactory> | undefined
    return route => deferred(() => (compiler ??= buildSerializer(externalSchemas, options))(route))
  }
  return { buildValidator: validators, buildSerializer: serializers }
}
