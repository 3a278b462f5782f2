import { BlockList, isIP } from 'node:net'
import { compileMatcher, type IdentityPattern, type PeerIdentity } from 'mtls-core'
import { snapshotOptions, unknownOption } from 'mtls-core/internal'
import { codes } from './errors.js'

export interface TrustedProxiesOptions {
  /** The proxies' own mTLS identities, as identity patterns (`IdentityPattern`: `spiffe://mesh/ns/ingress/**`, `dns:proxy.internal`, ...). */
  identities?: IdentityPattern[]
  /** The proxies' addresses, single or CIDR (`10.0.0.0/8`, `::1`); no IPv6 zone (`fe80::1%eth0`). */
  addresses?: string[]
}

/**
 * Compiles the trusted-proxy rule once. A direct peer is trusted when it matches every kind of rule that is
 * configured: with both identities and addresses, a trusted address without the right certificate is not enough.
 */
export function compileTrustedProxies (given: TrustedProxiesOptions, warn: (message: string) => void = () => {}): (tlsIdentity: PeerIdentity | null, address: string | undefined) => boolean {
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('trustedProxies must be { identities?, addresses? }')
  const options = snapshotOptions(given)
  const unknown = unknownOption(options, ['identities', 'addresses'], 'trustedProxies')
  if (unknown !== null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(unknown)
  const { identities, addresses } = options
  if (identities === undefined && addresses === undefined) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('trustedProxies needs identities, addresses or both')
  if (identities !== undefined && (!Array.isArray(identities) || identities.length === 0)) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('trustedProxies.identities must be a non-empty list of identity patterns')
  if (addresses !== undefined && (!Array.isArray(addresses) || addresses.length === 0)) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('trustedProxies.addresses must be a non-empty list of IP addresses or CIDRs')
  let matcher: ReturnType<typeof compileMatcher> | null = null
  if (identities !== undefined) {
    try {
      matcher = compileMatcher(identities)
    } catch (err) {
      throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`trustedProxies.identities: ${(err as Error).message}`)
    }
  }
  // One list per family: Node's BlockList would match IPv4 peers against an IPv6 rule (`::/0` trusting them all).
  let blockLists: Record<'ipv4' | 'ipv6', BlockList> | null = null
  if (addresses !== undefined) {
    blockLists = { ipv4: new BlockList(), ipv6: new BlockList() }
    for (const entry of addresses) {
      const subnet = typeof entry === 'string' ? parseSubnet(entry) : null
      if (subnet === null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`trustedProxies.addresses: ${JSON.stringify(entry)} is not an IP address or CIDR (such as 10.0.0.0/8 or ::1)`)
      // Node's BlockList drops the zone: `fe80::1%eth0` would trust that link-local address arriving on any interface.
      if (entry.includes('%')) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`trustedProxies.addresses: ${JSON.stringify(entry)} has an IPv6 zone, which the match cannot honour: give the address without it, on a host where it is unambiguous`)
      if (subnet.family === 'ipv6' && subnet.prefix >= 96 && IPV4_MAPPED.check(subnet.address, 'ipv6')) {
        warn(`trustedProxies.addresses: ${JSON.stringify(entry)} is an IPv4-mapped IPv6 rule, which matches no peer (an IPv4 peer is matched as its IPv4 address): write it as IPv4`)
      }
      blockLists[subnet.family].addSubnet(subnet.address, subnet.prefix, subnet.family)
    }
  }
  return (tlsIdentity, address) => {
    if (matcher !== null && (tlsIdentity === null || !matcher.matches(tlsIdentity))) return false
    if (blockLists !== null) {
      if (address === undefined) return false
      // A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d: it is checked as the IPv4 address it is.
      const plain = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
      const family = isIP(plain)
      if (family === 0 || !blockLists[family === 6 ? 'ipv6' : 'ipv4'].check(plain, family === 6 ? 'ipv6' : 'ipv4')) return false
    }
    return true
  }
}

const IPV4_MAPPED = new BlockList()
IPV4_MAPPED.addSubnet('::ffff:0:0', 96, 'ipv6')

// Strict: `10.0.0.0/` or `10.0.0.0/ ` must not become `/0` (every address), nor `10.0.0.0/8/9` anything at all.
function parseSubnet (entry: string): { address: string, prefix: number, family: 'ipv4' | 'ipv6' } | null {
  const slash = entry.indexOf('/')
  const address = slash === -1 ? entry : entry.slice(0, slash)
  const family = isIP(address)
  if (family === 0) return null
  const max = family === 6 ? 128 : 32
  if (slash === -1) return { address, prefix: max, family: family === 6 ? 'ipv6' : 'ipv4' }
  const digits = entry.slice(slash + 1)
  if (!/^(0|[1-9][0-9]{0,2})$/.test(digits) || Number(digits) > max) return null
  return { address, prefix: Number(digits), family: family === 6 ? 'ipv6' : 'ipv4' }
}
