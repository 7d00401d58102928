#!/usr/bin/env node
// `verify ARCHIVE` starts hashing on the other cores while the CLI loads (dist/verify/early.js).
if (process.argv[2] === 'verify') {
  try {
    const {startEarly} = await import('../dist/verify/early.js')
    startEarly(process.argv.slice(3))
  } catch {
    // only an optimisation
  }
}
const {execute} = await import('@oclif/core/execute')
await execute({dir: import.meta.url})
