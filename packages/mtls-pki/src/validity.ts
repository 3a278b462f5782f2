import { PkiError } from './errors.js'

/** When a certificate is valid: explicit dates, or a number of days from now (or from `notBefore`). */
export interface ValidityOptions {
  /** Start of validity. Default: five minutes ago, so small clock skew between hosts does not matter. */
  notBefore?: Date
  /** End of validity. Give this or `days`, not both. */
  notAfter?: Date
  /** Days of validity from now (or from `notBefore` when given). */
  days?: number
}

export const DAY_MS = 24 * 60 * 60 * 1000

/**
 * The years a certificate made here can hold. RFC 5280 wants a GeneralizedTime before 1950, but
 * @peculiar/x509 writes a two-digit UTCTime, so 1900 would come out as 2000; years past 9999 have no encoding.
 */
export const CERTIFICATE_YEARS = Object.freeze({ first: 1950, last: 9999 })

const CLOCK_SKEW_MS = 5 * 60 * 1000

export interface Validity {
  readonly notBefore: Date
  readonly notAfter: Date
}

export function resolveValidity (options: ValidityOptions, defaultDays: number, now = Date.now()): Validity {
  const { notBefore, notAfter, days } = options
  if (notBefore !== undefined && !isValidDate(notBefore)) throw invalid('notBefore must be a valid Date')
  if (notAfter !== undefined && !isValidDate(notAfter)) throw invalid('notAfter must be a valid Date')
  if (days !== undefined && (typeof days !== 'number' || !Number.isFinite(days) || days <= 0)) {
    throw invalid(`days must be a positive number; got ${String(days)}`)
  }
  if (days !== undefined && notAfter !== undefined) throw invalid('give notAfter or days, not both')

  // A certificate holds whole seconds: the dates are compared as it will hold them.
  const start = toSeconds(notBefore ?? new Date(now - CLOCK_SKEW_MS))
  const end = toSeconds(notAfter ?? new Date((notBefore?.getTime() ?? now) + (days ?? defaultDays) * DAY_MS))
  for (const [name, date] of [['notBefore', start], ['notAfter', end]] as const) {
    // An end past what a Date holds (days: 1e20) is an invalid Date, whose year is NaN: no comparison catches it.
    const year = date.getUTCFullYear()
    if (!(year >= CERTIFICATE_YEARS.first && year <= CERTIFICATE_YEARS.last)) {
      const shown = isValidDate(date) ? date.toISOString() : 'beyond any date'
      throw invalid(`${name} (${shown}) must fall in the years ${CERTIFICATE_YEARS.first} to ${CERTIFICATE_YEARS.last}`)
    }
  }
  if (end.getTime() <= start.getTime()) {
    throw invalid(`notAfter (${end.toISOString()}) must be later than notBefore (${start.toISOString()})`)
  }
  return { notBefore: start, notAfter: end }
}

/** Whole days from `now` to `date`, rounded down; negative once the date has passed. */
export function daysUntil (date: Date, now = Date.now()): number {
  return Math.floor((date.getTime() - now) / DAY_MS)
}

function toSeconds (date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000)
}

function isValidDate (value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime())
}

function invalid (message: string): PkiError {
  return new PkiError('ERR_MTLS_PKI_INVALID_OPTION', message)
}
