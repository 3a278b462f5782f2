// Certificate material, step by step and one way: read (material-read.ts), then validate (material-validate.ts,
// with crls.ts and certificate-summary.ts); `loadMaterial` is both. This file is the module's front.
import { readMaterial, type MaterialInput } from './material-read.js'
import { validateMaterial, type Material, type MaterialOptions } from './material-validate.js'

export type { CertificateSummary } from './certificate-summary.js'
export type { CrlSummary } from './crls.js'
export { MATERIAL_INPUT_KEYS, readMaterial, type MaterialInput, type MaterialPems } from './material-read.js'
export { validateMaterial, type Material, type MaterialOptions } from './material-validate.js'
export { materialTlsOptions } from './tls-options.js'

/** Reads (or takes) and validates certificate material; throws MaterialError naming the file and the reason. */
export async function loadMaterial (input: MaterialInput, options: MaterialOptions): Promise<Material> {
  return validateMaterial(await readMaterial(input), options)
}
