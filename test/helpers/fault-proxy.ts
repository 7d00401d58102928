/**
 * An in-process HTTP proxy that sits between airlock and a REAL testbed registry and injects
 * faults: error statuses (500/502/503, 429 + Retry-After), connection resets and truncations
 * mid-body, stalls, and wrong bytes (one flipped byte in a body).
 *
 *   const p = await FaultProxy.start('127.0.0.1:5301')
 *   p.rules.push(times(2, /\/blobs\/sha256:/, {kind: 'status', status: 503}))
 *   // refer to images as `${p.host}/testbed/app-a:1`
 *
 * Requests keep their Host header, so the registry's upload `Location`s point back at the proxy.
 * Every exchange is logged in `p.log` (method, path, Range, status, fault).
 */
import http from 'node:http'
import type {AddressInfo, Socket} from 'node:net'

export type Fault =
  /** Answer with this status and no body (the upstream is not contacted). */
  | {kind: 'status'; status: number; retryAfter?: string}
  /** Forward, send `afterBytes` of the body, then reset the connection (TCP RST). */
  | {kind: 'reset'; afterBytes: number}
  /** Forward, send `afterBytes` of the body, then close the connection cleanly (FIN) short of Content-Length. */
  | {kind: 'truncate'; afterBytes: number}
  /** Forward, send `afterBytes` of the body, then send nothing more for `ms` (forever when absent). */
  | {kind: 'stall'; afterBytes: number; ms?: number}
  /** Forward the whole body with the byte at `at` (of this response's body) flipped. */
  | {kind: 'flip'; at: number}

export interface ProxyRequest {
  method: string
  path: string
  range?: string
}

/** Return a fault for this request, or undefined to pass it through untouched. */
export type Rule = (req: ProxyRequest) => Fault | undefined

export interface LogEntry extends ProxyRequest {
  status: number
  fault?: Fault['kind']
}

/** A rule that fires for the first `n` requests matching method/path (n = Infinity: always). */
export function times(n: number, path: RegExp, fault: Fault, method = 'GET'): Rule {
  let left = n
  return (r) => {
    if (left <= 0 || r.method !== method || !path.test(r.path)) return undefined
    left--
    return fault
  }
}

export class FaultProxy {
  rules: Rule[] = []
  readonly log: LogEntry[] = []
  private sockets = new Set<Socket>()
  private readonly agent = new http.Agent({keepAlive: false})

  private constructor(private readonly server: http.Server, readonly upstream: string) {}

  /** 'host:port' to put in image references. */
  get host(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`
  }

  static async start(upstream: string): Promise<FaultProxy> {
    const server = http.createServer()
    const p = new FaultProxy(server, upstream)
    server.on('connection', (s) => {
      p.sockets.add(s)
      s.on('close', () => p.sockets.delete(s))
    })
    server.on('request', (req, res) => p.handle(req, res))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return p
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    this.agent.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }

  /** Requests seen so far matching method and path. */
  count(method: string, path: RegExp): number {
    return this.log.filter((l) => l.method === method && path.test(l.path)).length
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const info: ProxyRequest = {method: req.method ?? 'GET', path: req.url ?? '/', ...(req.headers.range ? {range: String(req.headers.range)} : {})}
    let fault: Fault | undefined
    for (const r of this.rules) {
      fault = r(info)
      if (fault) break
    }
    const entry: LogEntry = {...info, status: 0, ...(fault ? {fault: fault.kind} : {})}
    this.log.push(entry)
    if (fault?.kind === 'status') {
      req.resume()
      entry.status = fault.status
      const body = JSON.stringify({errors: [{code: 'UNAVAILABLE', message: `injected HTTP ${fault.status}`}]})
      res.writeHead(fault.status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...(fault.retryAfter ? {'Retry-After': fault.retryAfter} : {})})
      res.end(body)
      return
    }
    const [host, port] = this.upstream.split(':')
    const up = http.request({host, port: Number(port), method: req.method, path: req.url, headers: req.headers, agent: this.agent}, (ur) => {
      entry.status = ur.statusCode ?? 0
      if (fault && fault.kind !== 'flip' && fault.afterBytes === 0) {
        // Fail before any of the answer: the upstream did the work, the client never hears of it.
        ur.destroy()
        if (fault.kind === 'reset') res.socket?.resetAndDestroy()
        else if (fault.kind === 'truncate') res.socket?.end()
        else if (fault.ms !== undefined) setTimeout(() => res.socket?.destroy(), fault.ms)
        return
      }
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders)
      if (!fault) {
        ur.pipe(res)
        return
      }
      const f = fault
      let sent = 0
      let stopped = false
      ur.on('data', (chunk: Buffer) => {
        if (stopped) return
        let c = chunk
        if (f.kind === 'flip') {
          if (f.at >= sent && f.at < sent + c.length) {
            c = Buffer.from(c)
            c[f.at - sent] ^= 0xff
          }
          sent += c.length
          res.write(c)
          return
        }
        const room = f.afterBytes - sent
        if (c.length < room) {
          sent += c.length
          res.write(c)
          return
        }
        stopped = true
        if (room > 0) res.write(c.subarray(0, room))
        sent += Math.max(0, room)
        ur.destroy()
        const sock = res.socket
        if (f.kind === 'reset') setTimeout(() => sock?.resetAndDestroy(), 20)
        else if (f.kind === 'truncate') setTimeout(() => sock?.end(), 20)
        else if (f.kind === 'stall' && f.ms !== undefined) setTimeout(() => sock?.destroy(), f.ms)
      })
      ur.on('end', () => {
        if (!stopped) res.end()
      })
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  }
}
