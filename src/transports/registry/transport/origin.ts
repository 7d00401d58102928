/**
 * Which origin a registry host is reached at. Requests carry credentials only to this origin
 * (see request.ts); loopback hosts speak plain HTTP, anything else HTTPS unless `insecure`.
 */

export function isLoopbackHost(host: string): boolean {
  // host may carry a port: "127.0.0.1:5000", "[::1]:5000", "localhost:5000"
  let h = host
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']'))
  else if (h.split(':').length === 2) h = h.split(':')[0]
  h = h.toLowerCase()
  if (h === 'localhost' || h === '::1') return true
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h)
}

export interface RegistryEndpoint {
  scheme: 'http' | 'https'
  /** e.g. "https://ghcr.io", "http://127.0.0.1:5301". */
  origin: string
}

/** The scheme and origin of `host` ("host[:port]"); `insecure` allows plain HTTP to a remote host. */
export function registryEndpoint(host: string, insecure = false): RegistryEndpoint {
  const scheme = insecure || isLoopbackHost(host) ? 'http' : 'https'
  // Docker Hub's API lives on registry-1.docker.io; messages keep the name the user wrote.
  const endpoint = /^(docker\.io|index\.docker\.io)$/i.test(host) ? 'registry-1.docker.io' : host
  return {scheme, origin: new URL(`${scheme}://${endpoint}`).origin}
}
