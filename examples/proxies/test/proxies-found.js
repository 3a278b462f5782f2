// Run by tap before the test files (.taprc `before`): one line per proxy, saying whether it runs or why not.
import { describeProxy, findProxy, PROXIES } from './proxy-binaries.js'

for (const name of Object.keys(PROXIES)) console.log(`# ${describeProxy(findProxy(name))}`)
