/** One replica of the all-reduce benchmark: fill its slot, all-reduce, repeat (see bench/allreduce.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { GroupMemory, type GroupMemoryInit } from '../src/group/memory.js';

const { memory, replica, rounds } = workerData as { memory: GroupMemoryInit; replica: number; rounds: number };
const group = new GroupMemory(memory);
const slot = group.slot(replica);
slot.fill(replica + 1);
group.barrier();
const t0 = performance.now();
for (let i = 0; i < rounds; i++) group.allReduce(replica);
parentPort!.postMessage({ ms: (performance.now() - t0) / rounds, check: group.mean[0] });
