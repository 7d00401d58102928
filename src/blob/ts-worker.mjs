// Entry of a worker thread when airlock runs from its TypeScript sources (tests, under tsx):
// register tsx in this thread, then load the worker module named last on the command line.
// From dist/ this file is not used (see workers.ts).
import {register} from 'tsx/esm/api'

register()
await import(process.argv.at(-1))
