import {Worker, WorkerOptions} from 'node:worker_threads'

/** The worker modules of this folder (each a TypeScript module of its own). */
export type ThreadModule = 'hash-thread' | 'range-hash-thread'

/** Running from the TypeScript sources (tests run `node --import tsx`) rather than from dist/. */
const fromSource = import.meta.url.endsWith('.ts')

/**
 * Start one of this folder's worker modules. From dist/ that is the compiled `.js` file. From the
 * sources, Node 20 does not run tsx's `--import` hooks in worker threads (tsx registers them on
 * the main thread only), so the worker starts from a small loader that registers them first and
 * then imports the `.ts` module (named in its argv).
 */
export function startThread(name: ThreadModule, options: WorkerOptions = {}): Worker {
  if (!fromSource) return new Worker(new URL(`./${name}.js`, import.meta.url), options)
  const entry = new URL(`./${name}.ts`, import.meta.url).href
  return new Worker(new URL('./ts-worker.cjs', import.meta.url), {...options, argv: [entry]})
}
