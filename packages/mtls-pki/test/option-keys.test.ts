import t from 'tap'
import { unknownOption } from '../src/option-keys.js'

const known = ['commonName', 'spiffeId', 'days']

t.test('keys an object inherits from a class or layered defaults are checked like its own', async t => {
  class Options {
    commonName = 'a'
    get spifeId (): string { return 'spiffe://example.org/a' }
  }
  t.equal(unknownOption(new Options(), known, 'issue'), 'issue: unknown option "spifeId" (did you mean "spiffeId"?); known options: commonName, spiffeId, days')
  t.equal(unknownOption(Object.assign(Object.create({ days: 1 }), { commonName: 'a' }) as object, known, 'issue'), null, 'a layered default that is known')
  t.equal(unknownOption({ zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz: 1 }, known, 'issue'), 'issue: unknown option "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"; known options: commonName, spiffeId, days', 'no suggestion for a key like nothing known')
})
