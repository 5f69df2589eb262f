/**
 * One HTTP request of the client library: node:http (node:https for an
 * https URL) over connections kept alive and reused, not fetch.
 *
 * fetch (undici's WHATWG layer: Request, Response, streams) cost a
 * submit-and-wait client about 0.7-1.0 ms of CPU per request on the
 * project's 2-core machine, against 0.3-0.4 ms for node:http over a
 * kept-alive connection (bench/README.md, "Client cost per request"), and
 * the client usually shares the machine with a node. Idle connections do not
 * hold the process open, and are dropped a second before the node's
 * announced keep-alive timeout (Node's agent reads the `Keep-Alive:
 * timeout=` answer header), so a request is not sent on a connection the
 * node is closing.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'

/** A node's answer: status and body text (any status). */
export interface HttpAnswer {
  status: number
  statusText: string
  body: string
}

/** The request never got an answer: the node could not be reached, the connection broke, or `signal` ended it. */
export class RequestFailedError extends Error {
  override name = 'RequestFailedError'
  /** The system error code (ECONNREFUSED, ECONNRESET, ...) when there was one. */
  readonly code: string | undefined
  constructor (message: string, code?: string) {
    super(message)
    this.code = code
  }
}

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) }

export interface HttpRequestOptions {
  method?: string
  headers?: Record<string, string>
  /** Sent as is; its Content-Length is set. */
  body?: string
  /** Ends the request (a timeout: AbortSignal.timeout(ms)). */
  signal?: AbortSignal
}

/** Sends one request and reads the whole answer as text. */
export async function httpText (url: string, options: HttpRequestOptions = {}): Promise<HttpAnswer> {
  const target = new URL(url)
  const secure = target.protocol === 'https:'
  if (!secure && target.protocol !== 'http:') throw new RequestFailedError(`${url}: only http and https URLs are supported`)
  const headers = { ...options.headers }
  const body = options.body === undefined ? undefined : Buffer.from(options.body)
  if (body !== undefined) headers['content-length'] = String(body.byteLength)
  const signal = options.signal
  return await new Promise<HttpAnswer>((resolve, reject) => {
    const fail = (err: Error & { code?: string }): void => {
      reject(signal?.aborted === true
        ? new RequestFailedError(signal.reason instanceof Error ? signal.reason.message : 'the request was aborted', (signal.reason as { name?: string } | undefined)?.name)
        : new RequestFailedError(err.message, err.code))
    }
    const req = (secure ? httpsRequest : httpRequest)(target, { method: options.method ?? 'GET', headers, agent: secure ? agents.https : agents.http, signal }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('error', fail)
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, statusText: res.statusMessage ?? '', body: Buffer.concat(chunks).toString('utf8') })
      })
    })
    req.on('error', fail)
    req.end(body)
  })
}
