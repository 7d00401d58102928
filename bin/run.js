#!/usr/bin/env node
// `verify`: a plain command line runs without loading oclif (dist/cli/fast.js); any other one
// still starts hashing on the other cores while oclif loads (AIRLOCK_NO_FAST=1: always oclif).
let done = false
if (process.argv[2] === 'verify') {
  let fast
  try {
    fast = await import('../dist/cli/fast.js')
  } catch {
    // not built: oclif reports it
  }
  if (fast) {
    const argv = process.argv.slice(3)
    if (!process.env.AIRLOCK_NO_FAST) done = await fast.runFastVerify(argv)
    if (!done) fast.startEarly(argv)
  }
}
if (!done) {
  const {execute} = await import('@oclif/core/execute')
  await execute({dir: import.meta.url})
}
