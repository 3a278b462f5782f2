import { createSecureContext } from 'node:tls'

/**
 * The hybrid post-quantum key-exchange groups (ML-KEM beside a classical ECDH share) of OpenSSL 3.5, in the order a
 * peer of ours prefers them: X25519MLKEM768 first (the smallest and fastest, and what browsers, Go 1.24 and OpenSSL
 * 3.5 itself negotiate by default), then the two built on NIST curves (FIPS-approved halves, larger and slower).
 */
export const HYBRID_GROUPS: readonly string[] = Object.freeze(['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'])

/** The Node.js releases whose OpenSSL (3.5 or later) offers the hybrid groups, for error messages. */
export const POST_QUANTUM_NODE = 'Node.js 22.20 or later in 22.x, 24.5 or later in 24.x, or 26 and later (they bundle OpenSSL 3.5+)'

let supported: readonly string[] | null = null

/**
 * The hybrid groups this process's OpenSSL knows, in HYBRID_GROUPS order: asked of OpenSSL itself (a throwaway
 * secure context per group, once), not read from a version string, so a Node linked to another OpenSSL is judged
 * by what it can do.
 */
export function supportedHybridGroups (): readonly string[] {
  supported ??= Object.freeze(HYBRID_GROUPS.filter(group => {
    try {
      createSecureContext({ ecdhCurve: group })
      return true
    } catch {
      return false // OpenSSL 3.0: "Failed to set ECDH curve"
    }
  }))
  return supported
}

/** Whether a negotiated group (`getEphemeralKeyInfo().name`) is one of the hybrid post-quantum groups. */
export function isHybridGroup (name: string | null | undefined): boolean {
  return typeof name === 'string' && HYBRID_GROUPS.includes(name)
}

/** The key exchange a server or client was configured with, as their `status()` reports it. */
export interface KeyExchange {
  /** The groups offered, in order of preference; `null`: OpenSSL's defaults (on OpenSSL 3.5, X25519MLKEM768 first, classical groups accepted). */
  readonly groups: readonly string[] | null
  /** Only hybrid post-quantum groups are offered: a classical-only peer is refused at the handshake. */
  readonly postQuantumRequired: boolean
}

/** Why a `requirePostQuantum` setting cannot be honoured: a wrong option, or a Node whose OpenSSL lacks the groups. */
export interface KeyExchangeProblem {
  readonly kind: 'invalid' | 'unsupported'
  readonly message: string
}

/**
 * The key exchange for a `requirePostQuantum` option beside the other TLS settings given (`ecdhCurve` from a
 * server's further TLS settings, `minVersion`), or what is wrong with them. Fails closed: with `requirePostQuantum`
 * the groups are ours alone (an `ecdhCurve` beside it is refused, not merged, so no classical group slips back in),
 * and TLS 1.2 is refused (the hybrid groups are TLS 1.3's; a TLS 1.2 handshake could still agree RSA or
 * finite-field key exchange).
 */
export function keyExchangeFor (requirePostQuantum: unknown, { ecdhCurve, minVersion, where }: { ecdhCurve?: unknown, minVersion?: unknown, where: string }): { keyExchange: KeyExchange, ecdhCurve: string | undefined } | { problem: KeyExchangeProblem } {
  if (requirePostQuantum !== undefined && typeof requirePostQuantum !== 'boolean') {
    return { problem: { kind: 'invalid', message: `requirePostQuantum must be true or false; got ${JSON.stringify(requirePostQuantum)}` } }
  }
  if (requirePostQuantum !== true) {
    const groups = typeof ecdhCurve === 'string' && ecdhCurve !== 'auto' ? Object.freeze(ecdhCurve.split(':')) : null
    return { keyExchange: Object.freeze({ groups, postQuantumRequired: false }), ecdhCurve: undefined }
  }
  if (ecdhCurve !== undefined) {
    return { problem: { kind: 'invalid', message: `requirePostQuantum chooses the key-exchange groups itself (the hybrid post-quantum ones); leave ${where}.ecdhCurve out (got ${JSON.stringify(ecdhCurve)}): a group list beside it would be one judge too many, and a classical group in it would let a classical-only peer in` } }
  }
  if (minVersion === 'TLSv1.2') {
    return { problem: { kind: 'invalid', message: "requirePostQuantum needs TLS 1.3 (minVersion: 'TLSv1.3', the default): the hybrid post-quantum groups exist only in TLS 1.3, and a TLS 1.2 handshake could still agree a classical key exchange" } }
  }
  const groups = supportedHybridGroups()
  if (groups.length === 0) {
    return { problem: { kind: 'unsupported', message: `requirePostQuantum needs an OpenSSL that offers hybrid post-quantum key exchange (${HYBRID_GROUPS.join(', ')}): ${POST_QUANTUM_NODE}; this is Node.js ${process.version} with OpenSSL ${process.versions.openssl}, which offers none of them` } }
  }
  return { keyExchange: Object.freeze({ groups, postQuantumRequired: true }), ecdhCurve: groups.join(':') }
}
