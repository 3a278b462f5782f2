// Loaded with --import (tap --node-arg) on the Node 24 test run: every `import 'undici'` (the tests' and undici-mtls's own)
// resolves to undici 8 from the cache (MTLS_TEST_UNDICI), so the same tests prove both majors.
import { register } from 'node:module'
import { pathToFileURL } from 'node:url'

const target = process.env.MTLS_TEST_UNDICI
if (target !== undefined && target !== '') register(new URL('./undici-8-resolve.mjs', import.meta.url), { data: { url: pathToFileURL(target).href } })
