import { Agent } from 'undici'
import type { Teardown } from './teardown.js'

/** An undici agent trusting `trust.ca` for `localhost` and presenting `cert` (or no certificate), closed at teardown. */
export function agentFor (t: Teardown, trust: { ca: string }, cert?: { chain: string, key: string }, extra: Record<string, unknown> = {}): Agent {
  const agent = new Agent({ connect: { ca: trust.ca, servername: 'localhost', ...(cert === undefined ? {} : { cert: cert.chain, key: cert.key }) }, ...extra })
  t.teardown(() => agent.close())
  return agent
}
