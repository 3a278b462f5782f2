import t from 'tap'
import { MaterialError } from '../src/index.js'
import { codeOf, describeThrown } from '../src/internal.js'

t.test('describeThrown and codeOf turn anything thrown into text and a stable code', async t => {
  const hostile = new Proxy({}, { get () { throw new Error('a getter that throws') } })
  t.equal(describeThrown(new Error('boom')), 'boom')
  t.equal(describeThrown('plain text'), 'plain text')
  t.equal(describeThrown(Object.create(null)), '[object Object]')
  t.equal(describeThrown(null), '[object Null]')
  t.equal(describeThrown(hostile), 'a value that cannot be shown')
  t.equal(codeOf(new MaterialError('ERR_MTLS_MATERIAL_NO_PEM', 'no PEM'), 'ERR'), 'ERR_MTLS_MATERIAL_NO_PEM')
  t.equal(codeOf({ code: 42 }, 'ERR'), 'ERR', 'a code that is not a string is not a code')
  t.equal(codeOf(undefined, 'ERR'), 'ERR')
  t.equal(codeOf(hostile, 'ERR'), 'ERR')
})
