/**
 * Makes `instanceof` of an error class, and of every class derived from it, survive two copies of a package,
 * as undici's errors do: each class has a static `kind`; an error lists the kinds of its class and of its
 * bases under `brand` (a `Symbol.for` key, the same in every copy), and `instanceof` looks for the class's own
 * kind in that list instead of at the prototype chain.
 */
export function brandErrorClass (errorClass: { readonly kind: string, readonly prototype: Error }, brand: symbol): void {
  Object.defineProperty(errorClass.prototype, brand, {
    get (this: Error): string[] {
      const kinds: string[] = []
      for (let ctor = this.constructor as { kind?: string } | undefined; ctor?.kind !== undefined; ctor = Object.getPrototypeOf(ctor)) {
        if (!kinds.includes(ctor.kind)) kinds.push(ctor.kind)
      }
      return kinds
    }
  })
  Object.defineProperty(errorClass, Symbol.hasInstance, {
    value (this: { readonly kind: string }, value: unknown): boolean {
      if (typeof value !== 'object' || value === null) return false
      const kinds = (value as Record<symbol, unknown>)[brand]
      return Array.isArray(kinds) && kinds.includes(this.kind)
    }
  })
}
