import {Worker, WorkerOptions} from 'node:worker_threads'

/** The worker modules of this folder (each a TypeScript module of its own). */
export type ThreadModule = 'hash-thread' | 'range-hash-thread'

/** Running from the TypeScript sources (tests run `node --import tsx`) rather than from dist/. */
const fromSource = import.meta.url.endsWith('.ts')

/** Where worker scripts come from instead, when set (see useThreadScripts). */
let scriptOf: ((name: ThreadModule) => string) | undefined

/**
 * Start every worker from `locate(name)`, the path of a self-contained CommonJS script, instead
 * of from this folder: the single executable (src/cli/sea-main.ts) has no module files on disk.
 */
export function useThreadScripts(locate: (name: ThreadModule) => string): void {
  scriptOf = locate
}

/**
 * Start one of this folder's worker modules. From dist/ that is the compiled `.js` file. From the
 * sources, Node 20 does not run tsx's `--import` hooks in worker threads (tsx registers them on
 * the main thread only), so the worker starts from a small loader that registers them first and
 * then imports the `.ts` module (named in its argv).
 */
export function startThread(name: ThreadModule, options: WorkerOptions = {}): Worker {
  if (scriptOf) return new Worker(scriptOf(name), options)
  if (!fromSource) return new Worker(new URL(`./${name}.js`, import.meta.url), options)
  const entry = new URL(`./${name}.ts`, import.meta.url).href
  return new Worker(new URL('./ts-worker.cjs', import.meta.url), {...options, argv: [entry]})
}
