import { hangLimit } from 'mtls-test-support'

/** `promise`, or a rejection naming `what` when it has not settled within a hang limit (30 s, scaled). */
export async function within<T> (promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: not within ${hangLimit(30)} s`)), hangLimit(30_000)) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
