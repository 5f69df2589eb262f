#!/usr/bin/env node
/**
 * The `taskmesh` executable. Turns on Node's on-disk compile cache before the
 * CLI and its dependencies load (libp2p is many modules, and TypeScript is
 * stripped on load): a node starts about 0.4 s sooner from the second start
 * on. The cache lives in the OS temp folder (NODE_COMPILE_CACHE overrides it,
 * NODE_DISABLE_COMPILE_CACHE=1 turns it off).
 */
import module from 'node:module'

module.enableCompileCache?.()
await import('./cli.ts')
