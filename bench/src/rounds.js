// What a run keeps of its rounds: every round's figure, the spread (min, median, max), each scenario's ratio to
// its baseline paired round by round, and a calibration of the machine itself. On a shared machine absolute
// figures swing by a quarter between runs; a ratio of two scenarios measured in the same round cancels most of it.
import { cpuUsage } from 'node:process'
import { generateKeyPairSync, sign, verify } from 'node:crypto'

// The middle value (the upper one of an even count, as the bench has always reported).
export const median = values => values.length === 0 ? null : [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

const measured = values => values.filter(value => typeof value === 'number' && Number.isFinite(value))

/** `{ min, median, max }` of the figures measured (nulls left out), or null when there is none. */
export function spread (values) {
  const kept = measured(values)
  return kept.length === 0 ? null : { min: Math.min(...kept), median: median(kept), max: Math.max(...kept) }
}

/**
 * A scenario's figure over its baseline's, round by round (index = round), and their spread: the ratio of two
 * measurements taken side by side, never of two medians taken at different moments. Null when no round has both.
 */
export function pairedRatios (rounds, baselineRounds) {
  const ratios = rounds.map((value, round) => {
    const base = baselineRounds[round]
    return measured([value]).length === 1 && measured([base]).length === 1 && base > 0 ? value / base : null
  })
  const summary = spread(ratios)
  return summary === null ? null : { rounds: ratios, ...summary }
}

/**
 * What each scenario is compared with: the scenario that differs from it by the one thing it adds (the plugins
 * over Fastify with the same TLS options, Fastify over node:https), or, for a proxy, Node terminating mTLS itself.
 */
export const BASELINES = {
  tls: 'http',
  // The same node:https server and client, the key exchange alone differing: the post-quantum group's cost.
  'node-mtls:x25519mlkem768': 'node-mtls:x25519',
  'fastify-tls-options': 'node-mtls',
  mtls: 'fastify-tls-options',
  'mtls+identity': 'fastify-tls-options',
  'mtls+identity+authz': 'fastify-tls-options',
  'mtls+identity+authz+logger': 'fastify-tls-options',
  'x509source:mtls+identity+authz': 'fastify-tls-options',
  'x509source-federated:mtls+identity+authz': 'fastify-tls-options',
  // The OCSP family: the same certificates (naming the responder) and client (asking for a staple), the feature alone
  // differing. The unseen pair: a new client certificate on every connection, without and with a lookup each.
  'mtls:ocsp-certs': 'mtls',
  'mtls+ocsp-stapling': 'mtls:ocsp-certs',
  'mtls+revocation:cached': 'mtls:ocsp-certs',
  'mtls:ocsp-certs:unseen': 'mtls:ocsp-certs',
  'mtls+revocation:uncached': 'mtls:ocsp-certs:unseen',
  'nginx-mtls': 'node-mtls',
  'nginx-mtls->http': 'mtls+identity+authz',
  'nginx-mtls->fastify-identity': 'mtls+identity+authz',
  'haproxy-mtls->fastify-identity': 'mtls+identity+authz'
}

// The headline: the full stack against Fastify with the same TLS options and no plugin.
export const HEADLINE = { scenario: 'mtls+identity+authz', baseline: 'fastify-tls-options' }

/**
 * Where a run writes (`<name>.json`, `.md`, `.svg`): only a full run of every scenario replaces `latest`, the
 * published results; a short or partial run writes files of its own.
 */
export function resultsName (mode, partial) {
  if (mode !== 'full') return mode
  return partial ? 'partial' : 'latest'
}

/**
 * This machine's speed at the moment: CPU µs per P-256 ECDSA (SHA-256) signature verification with node:crypto,
 * in this process, the median of 5 batches of `verifies`. A fixed piece of work, so its time moves with the
 * machine alone (and with OpenSSL's version): recorded beside a run's figures, it tells a slow day from a slow change.
 */
export function calibrate (verifies) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const data = Buffer.from('bench calibration')
  const signature = sign('sha256', data, privateKey)
  const batches = []
  for (let batch = 0; batch < 5; batch++) {
    const before = cpuUsage()
    for (let i = 0; i < verifies; i++) {
      if (!verify('sha256', data, publicKey, signature)) throw new Error('calibration: a valid signature did not verify')
    }
    const { user, system } = cpuUsage(before)
    batches.push((user + system) / verifies)
  }
  return median(batches)
}
