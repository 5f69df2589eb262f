/**
 * `taskmesh init`: writes a cluster.config.json naming a fresh cluster key,
 * and the key file beside it (mode 0600). Copy both to every node of the
 * cluster; nodes without the key cannot connect.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, writeFileSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import { formatClusterKey, validateLayer } from '../config.ts'
import { CliError } from './common.ts'

export interface InitOptions {
  out: string
  cluster?: string
  /** Also generate an HTTP bearer token into the config. */
  token?: boolean
  /** Overwrite existing files. */
  force?: boolean
}

export interface InitResult {
  configFile: string
  keyFile: string
  token: string | null
}

/** The key file's name for a config file: cluster.config.json -> cluster.key, a.json -> a.key. */
export function keyFileFor (configFile: string): string {
  const base = basename(configFile)
  const stem = /\.json$/.test(base) ? base.replace(/(\.config)?\.json$/, '') : base
  return `${stem === '' ? 'cluster' : stem}.key`
}

export function initCluster (opts: InitOptions): InitResult {
  const configFile = resolve(opts.out)
  const keyName = keyFileFor(configFile)
  const keyFile = join(dirname(configFile), keyName)
  const token = opts.token === true ? randomBytes(32).toString('hex') : null
  const config: Record<string, unknown> = {
    ...(opts.cluster === undefined ? {} : { cluster: opts.cluster }),
    clusterKeyFile: `./${keyName}`,
    ...(token === null ? {} : { token })
  }
  validateLayer(config, 'taskmesh init')
  const flag = opts.force === true ? 'w' : 'wx'
  if (opts.force !== true) {
    for (const path of [configFile, keyFile]) {
      if (existsSync(path)) throw new CliError(`${path} exists; choose another --out, or --force to overwrite it`)
    }
  }
  const write = (path: string, text: string, mode: number): void => {
    try {
      writeFileSync(path, text, { flag, mode })
    } catch (err) {
      throw new CliError(`cannot write ${path}: ${(err as Error).message}`)
    }
  }
  write(keyFile, formatClusterKey(randomBytes(32)), 0o600)
  // With a token inside, the config is a secret too.
  write(configFile, JSON.stringify(config, null, 2) + '\n', token === null ? 0o644 : 0o600)
  return { configFile, keyFile, token }
}
