#!/usr/bin/env node
// `verify`: a plain command line runs without loading oclif (dist/cli/fast.js), its blobs hashed
// on the other cores from the start; any other one is left to oclif (AIRLOCK_NO_FAST=1: always).
let done = false
if (process.argv[2] === 'verify') {
  let fast
  try {
    fast = await import('../dist/cli/fast.js')
  } catch {
    // not built: oclif reports it
  }
  if (fast && !process.env.AIRLOCK_NO_FAST) done = await fast.runFastVerify(process.argv.slice(3))
}
if (!done) {
  const {execute} = await import('@oclif/core/execute')
  await execute({dir: import.meta.url})
}
