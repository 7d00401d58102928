import type * as OpenPGP from 'openpgp'

let loading: Promise<typeof OpenPGP> | undefined

/**
 * openpgp.js, loaded on first use: it is a large module and takes a good part of a command's
 * start-up, so commands that may not need it (and `verify`, which reads the archive meanwhile)
 * do not load it up front.
 */
export function pgp(): Promise<typeof OpenPGP> {
  loading ??= import('openpgp')
  return loading
}
