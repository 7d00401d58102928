// `npm run build`: V8's code cache for openpgp.js (dist/openpgp.v8cache), used by the fast
// `verify` path (src/sign/pgp.ts usePgpCodeCache). The library is compiled and then used as
// verify uses it (read a key, a signature, verify), so that the cache holds those functions too.
import {writeFileSync} from 'node:fs'

import {encodePgpCodeCache, loadCommonJs} from '../dist/sign/pgp.js'

const {exports: openpgp, script} = loadCommonJs()
const {privateKey, publicKey} = await openpgp.generateKey({type: 'ecc', curve: 'curve25519Legacy', userIDs: [{name: 'cache'}], format: 'object'})
const message = await openpgp.createMessage({binary: new Uint8Array([1, 2, 3])})
const armored = await openpgp.sign({message, signingKeys: privateKey, detached: true})
const key = await openpgp.readKey({armoredKey: publicKey.armor()})
const signature = await openpgp.readSignature({armoredSignature: armored})
const {signatures} = await openpgp.verify({message: await openpgp.createMessage({binary: new Uint8Array([1, 2, 3])}), signature, verificationKeys: [key]})
await signatures[0].verified
const out = new URL('../dist/openpgp.v8cache', import.meta.url)
writeFileSync(out, encodePgpCodeCache(script.createCachedData()))
