import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { createRootCa } from '../src/index.js'

// @peculiar/x509 writes every date as a two-digit UTCTime: 1900 came out as 2000, a silent wrong certificate.
t.test('a validity outside the years 1950 to 9999 is refused instead of written as another year', async t => {
  await t.rejects(createRootCa({ notBefore: new Date('1900-01-01T00:00:00Z'), notAfter: new Date('1949-12-31T00:00:00Z') }), {
    code: 'ERR_MTLS_PKI_INVALID_OPTION',
    message: 'notBefore (1900-01-01T00:00:00.000Z) must fall in the years 1950 to 9999'
  })
  await t.rejects(createRootCa({ notBefore: new Date('9999-12-31T00:00:00Z'), days: 2 }), {
    code: 'ERR_MTLS_PKI_INVALID_OPTION',
    message: 'notAfter (+010000-01-02T00:00:00.000Z) must fall in the years 1950 to 9999'
  })
  const edges = await createRootCa({ notBefore: new Date('1950-01-01T00:00:00Z'), notAfter: new Date('9999-12-31T23:59:59Z') })
  const cert = new X509Certificate(edges.certificate)
  t.equal(new Date(cert.validFrom).toISOString(), '1950-01-01T00:00:00.000Z')
  t.equal(new Date(cert.validTo).toISOString(), '9999-12-31T23:59:59.000Z')
})

t.test('an end beyond any date, or within the same second as the start, is refused', async t => {
  // These made certificates whose dates OpenSSL cannot read ("Bad time value") or that are valid for no second.
  await t.rejects(createRootCa({ days: 1e20 }), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message: 'notAfter (beyond any date) must fall in the years 1950 to 9999' })
  await t.rejects(createRootCa({ notBefore: new Date('2030-01-01T00:00:00Z'), days: 0.000001 }), {
    code: 'ERR_MTLS_PKI_INVALID_OPTION',
    message: 'notAfter (2030-01-01T00:00:00.000Z) must be later than notBefore (2030-01-01T00:00:00.000Z)'
  })
})
