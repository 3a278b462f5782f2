// Under CI every proxy runs (.ci/run installs the missing ones): a proxy skipped there would pass with less tested.
// PROXIES_E2E_SKIP still leaves one out on purpose.
import t from 'tap'
import { findProxy, PROXIES } from './proxy-binaries.js'

const ci = process.env.CI !== undefined && process.env.CI !== '' && process.env.CI !== 'false'

t.test('under CI, every proxy is installed and runs', { skip: ci ? false : 'not under CI (CI unset)' }, async t => {
  for (const name of Object.keys(PROXIES)) {
    const found = findProxy(name)
    if (found.skip?.includes('PROXIES_E2E_SKIP')) continue
    t.equal(found.skip, undefined, `${name} runs`)
  }
})
