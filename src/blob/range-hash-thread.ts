import {parentPort, workerData} from 'node:worker_threads'

import {JobTable, RangeJobsData} from './job-table.js'

/**
 * A hashing thread of plain verify (see HashJobs): claims ranges from the shared table and hashes
 * them with positional reads of the archive's descriptors, as the main thread does, then says so.
 */
const data = workerData as RangeJobsData
const table = new JobTable(data.sab, data.offsets.length)
table.hashClaimed(data.parts, data.offsets, data.lengths, Buffer.allocUnsafe(data.chunk))
parentPort!.postMessage('idle')
