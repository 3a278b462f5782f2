import { FileSource, loadOnce, wantsWatching, type FileSourceOptions, type FileSourceSpec, type Loaded } from './file-source.js'
import { readMaterial, validateMaterial, type Material, type MaterialInput, type MaterialOptions, type MaterialPems } from './material.js'

export interface MaterialSourceOptions extends MaterialOptions, FileSourceOptions {}

/**
 * Owns the current certificate material and swaps it whole, through the one reload protocol (FileSource):
 * re-read every file together, validate (including building a TLS context from it), let `apply` listeners
 * put it in service (a server's `setSecureContext`, a client's new context), and only then commit it and
 * announce `update`. On any failure it announces `error` once and keeps the material in service. Servers
 * and clients read `current`; they never watch files themselves.
 */
export class MaterialSource extends FileSource<Material> {
  readonly #inputs: { current: MaterialInput }

  private constructor (inputs: { current: MaterialInput }, spec: FileSourceSpec<Material, MaterialPems>, initial: Loaded<Material>, options: MaterialSourceOptions) {
    super(spec, initial, options)
    this.#inputs = inputs
  }

  /** Loads and validates the material (throwing MaterialError if it cannot be used), then starts watching. */
  static async create (input: MaterialInput, options: MaterialSourceOptions): Promise<MaterialSource> {
    const inputs = { current: input }
    const spec: FileSourceSpec<Material, MaterialPems> = {
      files: () => filesOf(inputs.current),
      read: async () => {
        const pems = await readMaterial(inputs.current)
        return { raw: pems, digest: pems.digest }
      },
      validate: pems => validateMaterial(pems, options)
    }
    const source = new MaterialSource(inputs, spec, await loadOnce(spec), options)
    if (wantsWatching(spec, options)) source.watch()
    return source
  }

  /**
   * Re-reads, validates and applies now; with `input`, switches to new inputs (files or PEM), and the
   * watcher follows the new files. Rejects when refused, and the old material and inputs stay.
   */
  override async reload (input?: MaterialInput): Promise<Material> {
    if (input === undefined) return await super.reload()
    return await this.reloadWith(() => {
      const previous = this.#inputs.current
      this.#inputs.current = input
      return () => { this.#inputs.current = previous }
    })
  }
}

function filesOf (input: MaterialInput): string[] {
  return [input.certFile, input.keyFile, input.caFile, input.crlFile].flat().filter((file): file is string => typeof file === 'string')
}

/** Loads material and keeps it current; see MaterialSource. */
export async function createMaterialSource (input: MaterialInput, options: MaterialSourceOptions): Promise<MaterialSource> {
  return await MaterialSource.create(input, options)
}
