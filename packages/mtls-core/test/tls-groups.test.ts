import { createSecureContext } from 'node:tls'
import t from 'tap'
import { HYBRID_GROUPS, isHybridGroup, keyExchangeFor, supportedHybridGroups } from '../src/internal.js'

t.test('the hybrid groups this OpenSSL offers are asked of OpenSSL itself, in order of preference', async t => {
  // The judge: OpenSSL building a context with each group, asked here independently.
  const offered = HYBRID_GROUPS.filter(group => { try { createSecureContext({ ecdhCurve: group }); return true } catch { return false } })
  t.same(supportedHybridGroups(), offered)
  t.equal(supportedHybridGroups(), supportedHybridGroups(), 'asked once')
  t.same(HYBRID_GROUPS, ['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024'])
  t.ok(Object.isFrozen(HYBRID_GROUPS))
})

t.test('requirePostQuantum chooses the groups alone, on TLS 1.3 only, or says what is wrong', async t => {
  t.same(keyExchangeFor(true, { where: 'x' }), { keyExchange: { groups: supportedHybridGroups(), postQuantumRequired: true }, ecdhCurve: supportedHybridGroups().join(':') })
  t.match(keyExchangeFor(true, { ecdhCurve: 'X25519', where: 'tlsOptions' }), { problem: { kind: 'invalid', message: /leave tlsOptions\.ecdhCurve out \(got "X25519"\)/ } })
  t.match(keyExchangeFor(true, { minVersion: 'TLSv1.2', where: 'x' }), { problem: { kind: 'invalid', message: /needs TLS 1\.3/ } })
  t.match(keyExchangeFor('yes', { where: 'x' }), { problem: { kind: 'invalid', message: /must be true or false; got "yes"/ } })
  t.match(keyExchangeFor(1, { where: 'x' }), { problem: { kind: 'invalid' } })
})

t.test('without requirePostQuantum the groups are OpenSSL\'s defaults or the list given, and nothing is overridden', async t => {
  t.same(keyExchangeFor(undefined, { where: 'x' }), { keyExchange: { groups: null, postQuantumRequired: false }, ecdhCurve: undefined })
  t.same(keyExchangeFor(false, { ecdhCurve: 'auto', minVersion: 'TLSv1.2', where: 'x' }), { keyExchange: { groups: null, postQuantumRequired: false }, ecdhCurve: undefined })
  t.same(keyExchangeFor(false, { ecdhCurve: 'X25519:P-256', where: 'x' }), { keyExchange: { groups: ['X25519', 'P-256'], postQuantumRequired: false }, ecdhCurve: undefined })
})

t.test('isHybridGroup names the hybrid groups only', async t => {
  for (const group of HYBRID_GROUPS) t.ok(isHybridGroup(group), group)
  for (const group of ['X25519', 'prime256v1', 'MLKEM768', '', null, undefined]) t.notOk(isHybridGroup(group), String(group))
})
