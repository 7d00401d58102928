/** An in-process HTTP server on 127.0.0.1 for protocol tests (no testbed needed). */
import http from 'node:http'
import type {AddressInfo} from 'node:net'

export interface LocalServer {
  /** "127.0.0.1:PORT" */
  host: string
  /** "http://127.0.0.1:PORT" */
  origin: string
  port: number
  /** Every request seen: method, url and headers. */
  seen: Array<{method: string; url: string; headers: http.IncomingHttpHeaders; body: string}>
  close(): Promise<void>
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void

export async function localServer(handler: Handler): Promise<LocalServer> {
  const seen: LocalServer['seen'] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8')
      seen.push({method: req.method ?? '', url: req.url ?? '', headers: req.headers, body})
      handler(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  return {
    host: `127.0.0.1:${port}`,
    origin: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

/** Send a JSON body. */
export function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers})
  res.end(text)
}
