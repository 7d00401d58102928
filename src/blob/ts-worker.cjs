// Entry of a worker thread when airlock runs from its TypeScript sources (tests, under tsx):
// tsx's require hook (in this thread, unlike its --import hooks) compiles the worker module named
// last on the command line. From dist/ this file is not used (see workers.ts).
require('tsx/cjs/api').register()
require(require('node:url').fileURLToPath(process.argv.at(-1)))
