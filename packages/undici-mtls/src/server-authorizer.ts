import { compileMatcher, type IdentityPattern, type PeerIdentity } from 'mtls-core'
import { describeThrown } from 'mtls-core/internal'
import { MtlsClientError } from './errors.js'

/**
 * Who the server must be, beyond a certificate chain from the trusted CA (go-spiffe's AuthorizeID,
 * AuthorizeOneOf, AuthorizeMemberOf): identity patterns (`IdentityPattern`: `spiffe://td/path`, `spiffe://td/**`,
 * `sha256:…` pins, `dns:…`), or a function that approves a server by returning exactly `true`.
 */
export type ServerAuthorizer = IdentityPattern | IdentityPattern[] | ((identity: PeerIdentity) => boolean)

/** A compiled authorizer: `check` gives `null` to approve, else the reason for refusing (`''` when there is nothing to add). */
export interface CompiledAuthorizer {
  readonly expected: string
  readonly check: (identity: PeerIdentity) => string | null
}

export function compileAuthorizer (server: ServerAuthorizer | undefined): CompiledAuthorizer | null {
  if (server === undefined) return null
  if (typeof server === 'function') {
    return {
      expected: 'a server accepted by the server() function',
      // Only `true` approves: a function that forgets to return, returns a Promise or a truthy value, or throws, refuses.
      check: identity => {
        let verdict: unknown
        try {
          verdict = server(identity)
        } catch (err) {
          return `server() threw: ${describeThrown(err)}`
        }
        return verdict === true ? null : verdict === false ? '' : `server() returned ${describe(verdict)}; only true approves a server`
      }
    }
  }
  const patterns = Array.isArray(server) ? server : [server]
  if (patterns.length === 0 || patterns.some(pattern => typeof pattern !== 'string')) {
    throw new MtlsClientError('ERR_MTLS_CLIENT_INVALID_OPTION', 'server must be an identity pattern, a list of them, or a function')
  }
  let matcher: ReturnType<typeof compileMatcher>
  try {
    matcher = compileMatcher(patterns)
  } catch (err) {
    throw new MtlsClientError('ERR_MTLS_CLIENT_INVALID_OPTION', `server: ${(err as Error).message}`, { cause: err })
  }
  return { expected: patterns.length === 1 ? patterns[0] as string : `one of ${patterns.join(', ')}`, check: identity => matcher.matches(identity) ? null : '' }
}

// What the function gave instead of true, without printing whatever object it returned.
function describe (verdict: unknown): string {
  if (verdict instanceof Promise) return 'a Promise (an async function?)'
  if (typeof verdict === 'object' && verdict !== null) return 'an object'
  return typeof verdict === 'string' ? JSON.stringify(verdict) : String(verdict)
}
