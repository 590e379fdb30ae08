#!/usr/bin/env node
// @ts-check
// Per-call host overhead: each op on a tiny problem (one 64-token block, one head), called many
// times in a row, sync and awaited async. On the CPU backend the figure is the whole wall time per
// call (the tiny problem's arithmetic is a few microseconds of it). With device tensors on CUDA,
// CUDA events around each op's work give its device time, and the host overhead is the wall time
// per call minus that. Prints a markdown table; asserts nothing.
//
//   node bench/overhead.js [--calls 2000] [--rounds 5]
'use strict';
const nabla = require('../dist');
const { native } = require('../dist/native');
const { waveTokens } = require('../dist/synthetic');
const { timeIt, markdownTable, intFlag } = require('./common');

/**
 * @param {string} name
 * @param {number} fallback
 */
const flag = (name, fallback) => intFlag('overhead', name, fallback);

const calls = flag('calls', 2000);
const rounds = flag('rounds', 5);
/** @type {[number, number, number]} one block of 64 tokens: 1 frame of 8 x 8 */
const grid = [1, 8, 8];
const [B, H, S, D] = [1, 1, 64, 64];

/**
 * @param {import('../dist').DType} type
 * @param {number} seed
 */
function input(type, seed) {
  return nabla.cast(nabla.tensor(waveTokens(B, H, grid, D, seed), [B, H, S, D]), type);
}

/**
 * @typedef {{ sync: () => unknown, async: () => Promise<unknown> }} OpCalls
 * @param {import('../dist').PlacementOptions} options placement
 * @param {any} q
 * @param {any} k
 * @param {any} v
 * @param {import('../dist').BlockMask} mask
 * @returns {Record<string, OpCalls>}
 */
function ops(options, q, k, v, mask) {
  /** Disposes device outputs so that a loop of calls holds no memory. */
  const free = (/** @type {any} */ x) => {
    if (x instanceof nabla.DeviceTensor) x.dispose();
    else if (x instanceof nabla.BlockMask) x.dispose();
  };
  return {
    blockPool: {
      sync: () => free(nabla.blockPoolSync(q, options)),
      async: async () => free(await nabla.blockPool(q, options)),
    },
    nablaMask: {
      sync: () => free(nabla.nablaMaskSync(q, k, { ...options, grid })),
      async: async () => free(await nabla.nablaMask(q, k, { ...options, grid })),
    },
    blockSparseAttention: {
      sync: () => free(nabla.blockSparseAttentionSync(q, k, v, mask, options)),
      async: async () => free(await nabla.blockSparseAttention(q, k, v, mask, options)),
    },
    attention: {
      sync: () => free(nabla.attentionSync(q, k, v, options)),
      async: async () => free(await nabla.attention(q, k, v, options)),
    },
  };
}

/**
 * Median wall time per call (us) over `rounds` rounds of `calls` calls, and (CUDA) device time per call.
 * @param {() => unknown} call
 * @param {boolean} cuda
 */
async function perCall(call, cuda) {
  const loop = async () => {
    for (let i = 0; i < calls; i++) await call();
  };
  await loop(); // warm up: first-use costs (thread pool, streams, pool growth, kernel loading)
  if (cuda) native.bodyTime(true);
  const t = await timeIt(loop, { warmup: 0, iters: rounds });
  const device = cuda ? native.bodyTime(false) : { ms: 0, ops: 0 };
  const wallUs = (t.median * 1e3) / calls;
  const deviceUs = device.ops > 0 ? (device.ms * 1e3) / device.ops : 0;
  return { wallUs, deviceUs, cpuUs: (t.cpuMin * 1e3) / calls };
}

/**
 * @param {string} backend
 * @param {Record<string, OpCalls>} table
 * @param {boolean} cuda
 */
async function measure(backend, table, cuda) {
  /** @type {Record<string, unknown>[]} */
  const rows = [];
  for (const [op, fns] of Object.entries(table))
    for (const mode of /** @type {const} */ (['sync', 'async'])) {
      const r = await perCall(fns[mode], cuda);
      rows.push({
        backend,
        op,
        call: mode === 'sync' ? 'sync' : 'awaited async',
        'wall us/call': r.wallUs,
        'device us/call': cuda ? r.deviceUs : 'n/a',
        'host overhead us': cuda ? r.wallUs - r.deviceUs : r.wallUs,
        'process CPU us/call': r.cpuUs,
      });
    }
  return rows;
}

async function main() {
  const info = nabla.backends();
  console.log(
    `# Per-call overhead: [B, H, S, D] = [${B}, ${H}, ${S}, ${D}], ${calls} calls x ${rounds} rounds (median round)\n`,
  );
  const CPU = /** @type {const} */ ({ backend: 'cpu' });
  const [q, k, v] = [input('float32', 1), input('float32', 2), input('float32', 3)];
  const mask = nabla.nablaMaskSync(q, k, { ...CPU, grid });
  const rows = await measure('cpu (float32)', ops(CPU, q, k, v, mask), false);
  if (info.cuda) {
    const [qd, kd, vd] = await Promise.all([1, 2, 3].map((seed) => nabla.toDevice(input('float16', seed))));
    const maskd = await nabla.nablaMask(qd, kd, { grid });
    rows.push(...(await measure('cuda (float16, device tensors)', ops({}, qd, kd, vd, maskd), true)));
    const memory = nabla.deviceMemory();
    console.log(`device memory after the loops: inUse ${memory.inUse} B, reserved ${memory.reserved} B\n`);
  } else {
    console.log(`CUDA rows skipped: ${info.reason ?? 'no CUDA device'}\n`);
  }
  console.log(markdownTable(rows));
  console.log(
    "\nhost overhead: wall minus device time (CUDA events around each op's work) on CUDA; the whole wall time on the CPU.",
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
