// The client side of the JWT-SVID hop: an undici Agent that verifies the server (its chain against our trust
// domain's bundle from the X509Source, and its SPIFFE ID) and presents no client certificate, as a client of a hop
// that terminates TLS (an L7 load balancer) does. undici-mtls's createMtlsAgent always presents one (its
// certificate options, or the source's SVID, are required), so this is built on undici's own connector.
import { createSecureContext } from 'node:tls'
import { Agent, buildConnector } from 'undici'
import { toPeerIdentity } from 'mtls-core'
import { derToPem } from 'spiffe-workload-api'

/**
 * An Agent whose connections trust `source.current.bundles.get(trustDomain)` (read at each connection, so a pushed
 * bundle is in force from the next one) and accept only a server whose certificate's SPIFFE ID is `serverId`.
 */
export function serverAuthAgent ({ source, trustDomain, serverId }) {
  let bundle = null
  let connector = null
  const connect = (options, callback) => {
    const current = source.current.bundles.get(trustDomain)
    if (current === undefined) {
      callback(new Error(`no trust bundle for ${trustDomain} from the Workload API`), null)
      return
    }
    if (current !== bundle) {
      bundle = current
      connector = buildConnector({
        secureContext: createSecureContext({ ca: derToPem(current), minVersion: 'TLSv1.3' }),
        // SVIDs name no host: who the server is, is its SPIFFE ID (checked after OpenSSL verified the chain).
        checkServerIdentity: (host, certificate) => {
          const found = toPeerIdentity(certificate.raw).spiffeId?.toString() ?? null
          return found === serverId ? undefined : new Error(`the server at ${host} is ${found ?? 'no SPIFFE ID'}, not ${serverId}`)
        },
        // Node skips checkServerIdentity on a resumed session: resume none, so every connection is checked.
        maxCachedSessions: 0
      })
    }
    connector(options, callback)
  }
  return new Agent({ connect })
}
