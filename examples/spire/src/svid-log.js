// Logging shared by the two services: the SVID a source serves, and every update the Workload API pushes.
import { X509Certificate } from 'node:crypto'

export function log (message) {
  console.log(`${new Date().toISOString()} ${message}`)
}

export function logError (message) {
  console.error(`${new Date().toISOString()} ${message}`)
}

/** The SVID's SPIFFE ID, its leaf's serial number and expiry, and the trust domains of the bundles. */
export function describe ({ svid, bundles }) {
  const leaf = new X509Certificate(svid.certificates[0])
  return `${svid.spiffeId} (serial ${leaf.serialNumber}, expires ${new Date(leaf.validTo).toISOString()}; ` +
    `trust bundles: ${[...bundles.keys()].join(', ')})`
}

/**
 * Logs the first SVID and each rotation (a new leaf certificate: the agent renews SVIDs well before they
 * expire); other updates (new trust bundles) get a line of their own. `status()` is where the source's state
 * (`{ connected, lastUpdate, reconnects, lastError, endpoint }`) is read from, through the server or the agent.
 */
export function logUpdates (name, source, status) {
  let fingerprint = new X509Certificate(source.current.svid.certificates[0]).fingerprint256
  let failing = false
  log(`${name}: first SVID from the Workload API: ${describe(source.current)}`)
  source.on('update', material => {
    if (failing) {
      failing = false
      log(`${name}: Workload API back: ${JSON.stringify(summary(status()))}`)
    }
    const next = new X509Certificate(material.svid.certificates[0]).fingerprint256
    if (next !== fingerprint) {
      fingerprint = next
      log(`${name}: SVID rotated, new connections present it (no restart): ${describe(material)}`)
    } else {
      log(`${name}: update with the same SVID (trust bundles: ${[...material.bundles.keys()].join(', ')})`)
    }
  })
  // With a listener, the source reports each failed attempt; it keeps serving its last SVID meanwhile.
  source.on('error', error => {
    failing = true
    log(`${name}: Workload API unavailable (${error.code}: ${error.message}); still serving the last SVID: ${JSON.stringify(summary(status()))}`)
  })
}

function summary (x509Source) {
  if (x509Source === undefined || x509Source === null) return x509Source
  const { lastError, ...rest } = x509Source
  return { ...rest, lastError: lastError === null || lastError === undefined ? null : `${lastError.code}: ${lastError.message}` }
}

/** Logs the JWT bundles a JwtSource holds, and each update or failure of its stream (tokens are never logged). */
export function logJwtUpdates (name, jwtSource) {
  const describeKeys = bundles => [...bundles].map(([trustDomain, bundle]) => `${trustDomain}: ${bundle.keys.size} key(s)`).join(', ')
  log(`${name}: JWT bundles from the Workload API: ${describeKeys(jwtSource.bundles)}`)
  jwtSource.on('update', bundles => log(`${name}: JWT bundles updated: ${describeKeys(bundles)}`))
  jwtSource.on('error', error => log(`${name}: JWT-SVID source: ${error.code}: ${error.message}; keeping what it holds`))
}
