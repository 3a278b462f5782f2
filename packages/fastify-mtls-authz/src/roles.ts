/**
 * Declare your role names here to have misspelt roles fail type checking:
 *
 * ```ts
 * declare module 'fastify-mtls-authz' {
 *   interface MtlsRoles { 'payments:charge': true, 'payments:read': true }
 * }
 * ```
 */
export interface MtlsRoles {}

/**
 * A role name: any string until MtlsRoles is declared, then only its keys. Written as a mapped type so that type
 * errors list the roles (`'"payments:charge" | "payments:read"'`) rather than print `keyof MtlsRoles`.
 */
export type MtlsRole = [keyof MtlsRoles] extends [never] ? string : { [Role in keyof MtlsRoles]: Role }[keyof MtlsRoles] & string

/** Only in type errors: what a role that MtlsRoles does not declare was checked against, `Allowed` being the declared ones. */
export interface OneOfMtlsRoles<Allowed extends string> {
  readonly 'a role declared in MtlsRoles': Allowed
}
