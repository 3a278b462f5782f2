import { once } from 'node:events'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { createTestPki } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { attempt, capturedLogger, clientOf, startServer } from '../helpers.js'

// Refused handshakes used to be only counted: an operator saw nothing in the logs while a client of another
// CA, or with an expired certificate, knocked. Each reason is now logged at warn, rate-limited, with a count.

const pki = await createTestPki()
const material = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }
const refusalLines = (lines: Array<Record<string, unknown>>): Array<Record<string, unknown>> => lines.filter(line => line.plugin === 'fastify-mtls' && 'reason' in line)

// The timers refusal-log.ts sets to end its intervals, held for the test to end (`end()` ends the oldest one): no
// interval ends on the clock, however slow the handshakes. Other timers run as ever.
function refusalIntervals (t: Test): { held: () => number[], end: () => void } {
  const realSetTimeout = globalThis.setTimeout
  const held: Array<{ ms: number, end: () => void }> = []
  t.capture(globalThis, 'setTimeout', (callback: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    if (!/refusal-log\.[jt]s/.test(new Error().stack ?? '')) return realSetTimeout(callback, ms, ...args)
    held.push({ ms: ms ?? 0, end: callback })
    return { unref () { return this } }
  })
  return { held: () => held.map(timer => timer.ms), end: () => { held.shift()?.end() } }
}

t.test('each refusal reason is logged at warn at once, with its reason and a count, and nothing from the certificate', async t => {
  const { logger, lines } = capturedLogger()
  const { app, port } = await startServer(t, material, {}, { logger })
  const refused = [
    ['unknown_ca', pki.otherCa],
    ['expired', pki.expired],
    ['no_certificate', undefined],
    ['ca_as_leaf', pki.caAsLeaf]
  ] as const
  for (const [reason, cert] of refused) {
    t.equal((await attempt(port, clientOf(pki, cert))).status, null, `${reason}: refused`)
    const logged = refusalLines(lines)
    t.equal(logged.length, refused.findIndex(([r]) => r === reason) + 1, `${reason}: one line at once`)
    const line = logged.at(-1) as Record<string, unknown>
    t.match(line, { level: 40, reason, count: 1, msg: `1 TLS handshake refused: ${reason} (at most one line per reason every 60000 ms)` })
    t.same(Object.keys(line).sort(), ['count', 'hostname', 'level', 'msg', 'pid', 'plugin', 'reason', 'time'], `${reason}: the line carries the reason and the count, nothing else`)
    if (cert !== undefined) {
      const text = JSON.stringify(line)
      for (const secret of [cert.fingerprint256, cert.serialNumber, 'spiffe://', 'BEGIN']) t.notOk(text.includes(secret), `${reason}: no ${secret} in the log`)
    }
  }
  t.match(app.mtls.stats().failures, { unknown_ca: 1, expired: 1, no_certificate: 1, ca_as_leaf: 1 }, 'the counters are kept as before')
})

t.test('within the interval, further refusals of a reason are only counted; the count comes with the next line', async t => {
  refusalIntervals(t)
  const { logger, lines } = capturedLogger()
  const { app, port } = await startServer(t, material, {}, { logger })
  for (let i = 0; i < 4; i++) await attempt(port, clientOf(pki, pki.expired))
  await attempt(port, clientOf(pki, pki.otherCa))
  t.match(refusalLines(lines), [{ reason: 'expired', count: 1 }, { reason: 'unknown_ca', count: 1 }], 'four expired refusals, one line; another reason has its own')
  t.equal(refusalLines(lines).length, 2)
  t.equal(app.mtls.stats().failures.expired, 4, 'all four are counted')
  await app.close()
  t.match(refusalLines(lines).slice(2), [{ reason: 'expired', count: 3, msg: /^3 TLS handshakes refused: expired/ }], 'closing reports the three still pending, once')
  t.equal(refusalLines(lines).length, 3)
})

t.test('a timer reports pending refusals when the interval ends; a quiet reason then logs at once again', async t => {
  const intervalMs = 1000
  const intervals = refusalIntervals(t)
  const { logger, lines } = capturedLogger()
  const { port } = await startServer(t, material, { refusalLogIntervalMs: intervalMs }, { logger })
  for (let i = 0; i < 3; i++) await attempt(port, clientOf(pki, pki.otherCa))
  t.match(refusalLines(lines), [{ reason: 'unknown_ca', count: 1, msg: /every 1000 ms/ }], 'three refusals within one interval: one line')
  t.same(intervals.held(), [intervalMs], 'which started an interval')
  intervals.end()
  t.match(refusalLines(lines).slice(1), [{ reason: 'unknown_ca', count: 2 }], 'the interval\'s end writes the next line, with the two counted since the first')
  t.same(intervals.held(), [intervalMs], 'and starts another interval')
  // That line started a new interval with nothing in it; once it ends, a refusal is logged at once.
  intervals.end()
  t.equal(refusalLines(lines).length, 2, 'an interval with no refusal writes nothing')
  t.same(intervals.held(), [], 'and starts none')
  await attempt(port, clientOf(pki, pki.otherCa))
  t.match(refusalLines(lines).slice(2), [{ reason: 'unknown_ca', count: 1 }], 'after a quiet interval the first refusal is logged at once')
})

t.test('a TCP probe that closes without a TLS handshake is counted and logged as other', async t => {
  const { logger, lines } = capturedLogger()
  const { app, port } = await startServer(t, material, {}, { logger })
  const probe = connect(port, '127.0.0.1')
  await once(probe, 'connect')
  probe.end()
  await once(probe, 'close')
  await until(() => app.mtls.stats().failures.other > 0, 'the probe counted')
  t.match(refusalLines(lines), [{ reason: 'other', count: 1 }])
})

// A client that presents its leaf without the intermediate is refused with OpenSSL's UNABLE_TO_VERIFY_LEAF_SIGNATURE,
// which was logged as a bare unknown_ca: nothing told the operator that the client's chain file was the fix.
t.test('a client that sends its leaf alone is refused on a line of its own that says to send the chain file', async t => {
  refusalIntervals(t)
  const { logger, lines } = capturedLogger()
  const { app, port } = await startServer(t, { ...material, crl: [...pki.crl] }, {}, { logger })
  const leafAlone = { ca: pki.ca, chain: pki.orderService.certificate, key: pki.orderService.key }
  t.equal((await attempt(port, leafAlone)).status, null, 'refused at the handshake')
  t.equal(app.mtls.stats().failures.unknown_ca, 1, 'counted as unknown_ca, as before')
  const [line] = refusalLines(lines)
  t.match(line, {
    level: 40,
    reason: 'unknown_ca',
    verdict: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    count: 1,
    msg: '1 TLS handshake refused: unknown_ca (UNABLE_TO_VERIFY_LEAF_SIGNATURE): the client sent its certificate without the CA certificate that issued it, and no trusted CA issued it: ' +
      'most likely the client presents its leaf alone; configure it with its chain file, the leaf followed by the intermediate (mtls-pki writes it as NAME-chain.pem; ' +
      'with cert-manager, tls.crt holds the chain), or else its CA is not one this server trusts (at most one line per reason every 60000 ms)'
  })
  t.same(Object.keys(line ?? {}).sort(), ['count', 'hostname', 'level', 'msg', 'pid', 'plugin', 'reason', 'time', 'verdict'], 'the verdict is added, nothing from the certificate')
  for (const secret of [pki.orderService.fingerprint256, pki.orderService.serialNumber, 'spiffe://', 'BEGIN']) t.notOk(JSON.stringify(line).includes(secret), `no ${secret} in the log`)

  // A chain from another CA is unknown_ca too, but an intermediate would not help it: its own line, no hint.
  await attempt(port, clientOf(pki, pki.otherCa))
  await attempt(port, leafAlone)
  t.match(refusalLines(lines), [{ verdict: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' }, { reason: 'unknown_ca', count: 1, msg: '1 TLS handshake refused: unknown_ca (at most one line per reason every 60000 ms)' }])
  t.equal(refusalLines(lines).length, 2, 'the second leaf-alone refusal is counted within its interval')
  t.notOk('verdict' in (refusalLines(lines)[1] ?? {}), 'the other CA\'s line carries no verdict')
  await app.close()
  t.match(refusalLines(lines).slice(2), [{ verdict: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', count: 1, msg: /^1 TLS handshake refused: unknown_ca \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): the client sent its certificate/ }], 'closing reports it with the hint')
})
