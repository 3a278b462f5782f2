import type { Dispatcher } from 'undici'

/** The handler interface of undici 6 and of Node's own fetch, which undici 8's dispatchers no longer take. */
interface LegacyHandler {
  onConnect?: (abort: (reason?: Error) => void, context?: object) => void
  onUpgrade?: (statusCode: number, rawHeaders: Buffer[], socket: unknown) => void
  onResponseStarted?: () => void
  onHeaders?: (statusCode: number, rawHeaders: Buffer[], resume: () => void, statusMessage: string) => boolean | undefined
  onData?: (chunk: Buffer) => boolean | undefined
  onComplete?: (rawTrailers: Buffer[]) => void
  onError?: (error: Error) => void
}

interface Controller {
  abort: (reason: Error) => void
  pause: () => void
  resume: () => void
}

type Headers = Record<string, string | string[] | undefined>

/**
 * Node's global `fetch` (its bundled undici) hands a dispatcher handlers of the older interface
 * (`onConnect`, `onHeaders`, `onData`, ...); undici 8's Agent refuses them ("invalid onRequestStart method"),
 * so `fetch(url, { dispatcher })` would fail on every Node version. The agent translates such a handler to
 * the current interface, as undici 7 did itself; a current handler passes through untouched.
 */
export function currentHandler (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): Dispatcher.DispatchHandler {
  const legacy = handler as LegacyHandler & { onRequestStart?: unknown }
  if (typeof legacy.onRequestStart === 'function' || (typeof legacy.onHeaders !== 'function' && typeof legacy.onConnect !== 'function')) return handler
  // Only a handler undici itself would take is translated; any other goes on as it is, for undici to refuse.
  const upgrades = (options.upgrade !== undefined && options.upgrade !== null) || options.method === 'CONNECT'
  if (typeof legacy.onError !== 'function' || (upgrades && typeof legacy.onUpgrade !== 'function')) return handler
  return {
    onRequestStart (controller: Controller, context: object) {
      legacy.onConnect?.(reason => { controller.abort(reason ?? new Error('aborted')) }, context)
    },
    onRequestUpgrade (_controller: Controller, statusCode: number, headers: Headers, socket: unknown) {
      legacy.onUpgrade?.(statusCode, rawHeaders(headers), socket)
    },
    onResponseStart (controller: Controller, statusCode: number, headers: Headers, statusMessage: string) {
      legacy.onResponseStarted?.()
      if (legacy.onHeaders?.(statusCode, rawHeaders(headers), () => { controller.resume() }, statusMessage) === false) controller.pause()
    },
    onResponseData (controller: Controller, chunk: Buffer) {
      if (legacy.onData?.(chunk) === false) controller.pause()
    },
    onResponseEnd (_controller: Controller, trailers: Headers) {
      legacy.onComplete?.(rawHeaders(trailers))
    },
    onResponseError (_controller: Controller, error: Error) {
      if (legacy.onError === undefined) throw error
      legacy.onError(error)
    }
  } as unknown as Dispatcher.DispatchHandler
}

function rawHeaders (headers: Headers | null | undefined): Buffer[] {
  const raw: Buffer[] = []
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (value === undefined) continue
    for (const each of Array.isArray(value) ? value : [value]) raw.push(Buffer.from(name, 'latin1'), Buffer.from(each, 'latin1'))
  }
  return raw
}
