/**
 * Bearer-token authentication of the HTTP API. One onRequest hook guards
 * every route, including routes added later, except `GET /healthz`; an
 * unknown route without the token is a 401 too, so routes cannot be probed.
 * The comparison is constant-time over SHA-256 digests, so neither the
 * token's content nor its length leaks through timing.
 *
 * A browser cannot put a header on the dashboard's page load or its
 * EventSource, so it signs in once: `GET /?token=<token>` answers with an
 * HttpOnly, SameSite=Strict cookie holding the token and a redirect to `/`
 * (the token leaves the address bar); requests carrying that cookie pass
 * like ones with the header. SameSite=Strict keeps other sites' pages from
 * using it.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** Paths served without a token: liveness only, it reveals nothing. */
const OPEN_PATHS = new Set(['/healthz'])

function digest (s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}

/** True when `presented` equals `expected`, in time independent of both. */
export function tokenMatches (presented: string, expected: string): boolean {
  return matchesDigest(presented, digest(expected))
}

/** True when `presented` hashes to `expected` (a token's digest, computed once), in time independent of both. */
function matchesDigest (presented: string, expected: Buffer): boolean {
  return timingSafeEqual(digest(presented), expected)
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerOf (header: string | undefined): string | undefined {
  const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return m?.[1]
}

export const TOKEN_COOKIE = 'taskmesh_token'

/** The value of the token cookie in a Cookie header, or undefined. */
export function cookieTokenOf (header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
      try { return decodeURIComponent(part.slice(eq + 1).trim()) } catch { return undefined }
    }
  }
  return undefined
}

/** An onRequest hook answering 401 to any request without `token`, but those for OPEN_PATHS. */
export function requireToken (token: string) {
  // The token's digest once, not on every request.
  const expected = digest(token)
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const path = req.url.split('?', 1)[0]!
    if (OPEN_PATHS.has(path) && (req.method === 'GET' || req.method === 'HEAD')) return
    const presented = bearerOf(req.headers.authorization) ?? cookieTokenOf(req.headers.cookie)
    if (presented !== undefined && matchesDigest(presented, expected)) return
    if (path === '/' && req.method === 'GET') {
      const query = new URLSearchParams(req.url.slice(path.length + 1))
      const offered = query.get('token')
      if (offered !== null && matchesDigest(offered, expected)) {
        await reply.code(303)
          .header('Set-Cookie', `${TOKEN_COOKIE}=${encodeURIComponent(offered)}; HttpOnly; SameSite=Strict; Path=/`)
          .header('Location', '/').send()
        return
      }
    }
    await reply.code(401).header('WWW-Authenticate', 'Bearer realm="taskmesh"').send({
      error: { code: 'UNAUTHORIZED', message: presented === undefined ? 'this node requires "Authorization: Bearer <token>" (its token or TASKMESH_TOKEN); in a browser, open /?token=<token> once' : 'wrong token' }
    })
  }
}
