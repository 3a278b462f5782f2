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

/** A role name: any string until MtlsRoles is declared, then only its keys. */
export type MtlsRole = [keyof MtlsRoles] extends [never] ? string : Extract<keyof MtlsRoles, string>
