import { BlockList, isIP } from 'node:net'
import { compileMatcher, type PeerIdentity } from 'mtls-core'
import { codes } from './errors.js'

export interface TrustedProxiesOptions {
  /** The proxies' own mTLS identities, as mtls-core identity patterns (`spiffe://mesh/ns/ingress/**`, `dns:proxy.internal`, ...). */
  identities?: string[]
  /** The proxies' addresses, single or CIDR (`10.0.0.0/8`, `::1`). */
  addresses?: string[]
}

/**
 * Compiles the trusted-proxy rule once. A direct peer is trusted when it matches every kind of rule that is
 * configured: with both identities and addresses, a trusted address without the right certificate is not enough.
 */
export function compileTrustedProxies (options: TrustedProxiesOptions): (tlsIdentity: PeerIdentity | null, address: string | undefined) => boolean {
  const { identities, addresses } = options
  if (identities === undefined && addresses === undefined) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('trustedProxies needs identities, addresses or both')
  let matcher: ReturnType<typeof compileMatcher> | null = null
  if (identities !== undefined) {
    try {
      matcher = compileMatcher(identities)
    } catch (err) {
      throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`trustedProxies.identities: ${(err as Error).message}`)
    }
  }
  let blockList: BlockList | null = null
  if (addresses !== undefined) {
    blockList = new BlockList()
    for (const entry of addresses) {
      const [address = '', prefix] = String(entry).split('/')
      const family = isIP(address)
      const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix)
      if (family === 0 || !Number.isInteger(bits) || bits < 0 || bits > (family === 6 ? 128 : 32)) {
        throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`trustedProxies.addresses: ${JSON.stringify(entry)} is not an IP address or CIDR`)
      }
      blockList.addSubnet(address, bits, family === 6 ? 'ipv6' : 'ipv4')
    }
  }
  return (tlsIdentity, address) => {
    if (matcher !== null && (tlsIdentity === null || !matcher.matches(tlsIdentity))) return false
    if (blockList !== null) {
      if (address === undefined) return false
      const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
      if (!blockList.check(plain, isIP(plain) === 6 ? 'ipv6' : 'ipv4')) return false
    }
    return true
  }
}
