#!/usr/bin/env node
// @ts-check
// What a service that calls this package sees, on whichever backend is present (CUDA when a
// device is usable, else the CPU): start-up cost against the steady state, host overhead per op,
// device memory over many calls, the out-of-memory path, dispose() under a pending op, async
// uploads, and interop with other GPU code (wrapped memory, waits across streams). CUDA-only rows
// say SKIPPED with the reason on the CPU. Two fresh child processes (this script with --child)
// split the cold start: one times the first CUDA call alone (context creation) and then its first
// request, the other calls warmUp with the request's shape and options and then times its first
// request. Both run the same request function as this process.
//
//   node bench/service-check.js [--backend auto|cpu|cuda] [--shape tiny|small] [--calls N]
//                               [--requests N] [--out DIR] [--no-oom]
//
// --backend   where the ops run (default auto: CUDA when a device is usable)
// --shape     the request's shape: tiny = B1 H2 S512 (2x16x16) D64, small = B1 H8 S16384 (16x32x32)
//             D128 (gpu-check's small shape); default small on CUDA, tiny on the CPU
// --calls N   ops in the memory loop (default 1000)
// --requests  timed requests after the first one (default 20)
// --out DIR   also write service-check.md and service-check.json there
// --no-oom    skip the out-of-memory row (it fills the whole device for a moment)
// --child context|warmup   (internal) run as one of the child processes above: print one JSON line
//
// A request is what a service does per call: upload q, k, v (CUDA), NABLA attention at threshold
// 0.7 (mask, then block-sparse attention), download the output, free everything. Rows say PASS or
// FAIL (correctness: a FAIL makes the exit status 1), MET or MISSED (a speed target: never changes
// the exit status), INFO (a number without a target) or SKIPPED (with the reason).
'use strict';
const t00 = performance.now(); // ms since the process started (performance.timeOrigin)
const childProcess = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const nabla = require('../dist');
const tLoaded = performance.now();
const { uniform, waveTokens } = require('../dist/synthetic');
const { summarize } = require('../dist/timing');
const { markdownTable } = require('./common');

/**
 * @typedef {import('../dist').Tensor} Tensor
 * @typedef {import('../dist').DeviceTensor} DeviceTensor
 * @typedef {import('../dist').TokenGrid} TokenGrid
 * @typedef {{ check: string, result: 'PASS' | 'FAIL' | 'MET' | 'MISSED' | 'INFO' | 'SKIPPED', measured: string, target: string, note: string }} Row
 */

const USAGE = `usage: node bench/service-check.js [--backend auto|cpu|cuda] [--shape tiny|small] [--calls N]
                                   [--requests N] [--out DIR] [--no-oom]`;

/** First call of a request against the steady state: what a service's first request may cost. */
const FIRST_REQUEST_TARGET = 2;
/** Device memory growth over the memory loop that still counts as flat (allocator granularity). */
const FLAT_MEMORY_BYTES = 16 * 2 ** 20;
const THRESHOLD = 0.7;

const SHAPES = /** @type {const} */ ({
  tiny: { B: 1, H: 2, grid: [2, 16, 16], D: 64 },
  small: { B: 1, H: 8, grid: [16, 32, 32], D: 128 },
});

/**
 * @param {string[]} argv
 */
function parseArgs(argv) {
  /** @type {{ backend: string, shape?: keyof typeof SHAPES, calls: number, requests: number, out?: string, oom: boolean, child?: 'context' | 'warmup' }} */
  const a = {
    backend: 'auto',
    shape: undefined,
    calls: 1000,
    requests: 20,
    out: undefined,
    oom: true,
    child: undefined,
  };
  /** @param {number} i @param {string} name */
  const value = (i, name) => {
    if (i + 1 >= argv.length) throw new Error(`${name} needs a value`);
    return argv[i + 1];
  };
  /** @param {string} text @param {string} name */
  const count = (text, name) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${text}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    if (f === '--backend') a.backend = value(i++, f);
    else if (f === '--shape') {
      const s = value(i++, f);
      if (s !== 'tiny' && s !== 'small') throw new Error(`--shape must be tiny or small, not ${s}`);
      a.shape = s;
    } else if (f === '--calls') a.calls = count(value(i++, f), f);
    else if (f === '--requests') a.requests = count(value(i++, f), f);
    else if (f === '--out') a.out = value(i++, f);
    else if (f === '--no-oom') a.oom = false;
    else if (f === '--child') {
      const c = value(i++, f);
      if (c !== 'context' && c !== 'warmup') throw new Error(`--child must be context or warmup, not ${c}`);
      a.child = c;
    } else if (f === '--help' || f === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${f}`);
  }
  if (!['auto', 'cpu', 'cuda'].includes(a.backend))
    throw new Error(`--backend must be auto, cpu or cuda, not ${a.backend}`);
  return a;
}

/** @type {ReturnType<typeof parseArgs>} */
let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(`service-check: ${e instanceof Error ? e.message : e}\n${USAGE}`);
  process.exit(2);
}

const info = nabla.backends();
const ON_CUDA = args.backend === 'cuda' || (args.backend === 'auto' && info.cuda);
if (ON_CUDA && !info.cuda) {
  console.error(`service-check: --backend cuda, but no CUDA device (${info.reason ?? 'unknown reason'})`);
  process.exit(1);
}
const BACKEND = ON_CUDA ? 'cuda' : 'cpu';
const PLACE = /** @type {const} */ ({ backend: ON_CUDA ? 'cuda' : 'cpu' });
const NOT_CUDA = `CUDA only; this run is on the CPU backend${info.cuda ? ' (--backend cpu)' : ' (no usable CUDA device: see the header)'}`;
const shapeName = args.shape ?? (ON_CUDA ? 'small' : 'tiny');
const shape = SHAPES[shapeName];

/** @type {Row[]} */
const rows = [];
/**
 * @param {string} check
 * @param {Row['result']} result
 * @param {string} measured
 * @param {string} target
 * @param {string} note
 */
function row(check, result, measured, target = '', note = '') {
  rows.push({ check, result, measured, target, note });
}
/** @param {string} check @param {string} why */
const skip = (check, why) => row(check, 'SKIPPED', '', '', why);
/** @param {number} ms */
const ms = (ms) => `${ms.toPrecision(4)} ms`;
/** @param {number} bytes */
const mib = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
/** @param {unknown} e */
const firstLine = (e) => (e instanceof Error ? e.message : String(e)).split('\n')[0];
/** @param {unknown} e */
const codeOf = (e) => (e && typeof e === 'object' && 'code' in e ? String(e.code) : 'no code');

/** @param {Tensor | DeviceTensor | import('../dist').BlockMask | undefined} x */
function free(x) {
  if (x instanceof nabla.DeviceTensor) {
    if (!x.disposed) x.dispose();
  } else if (x instanceof nabla.BlockMask) x.dispose();
}

/** @param {Tensor} t */
function upload(t) {
  return ON_CUDA ? nabla.toDeviceSync(t) : t;
}

/** @param {Tensor | DeviceTensor} t */
function download(t) {
  return t instanceof nabla.DeviceTensor ? t.toHostSync() : t;
}

/** @param {Tensor} a @param {Tensor} b: elements that differ bit for bit (the same op on the same inputs) */
function differing(a, b) {
  let n = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Inputs: structured q and k (local block maps, as in a video DiT), uniform v, bf16.

const S = shape.grid[0] * shape.grid[1] * shape.grid[2];
const dims = [shape.B, shape.H, S, shape.D];
const grid = /** @type {TokenGrid} */ ([...shape.grid]);
const shapeText = `B${shape.B} H${shape.H} S${S} (${shape.grid.join('x')}) D${shape.D} bf16`;
const tGen0 = performance.now();
const qh = nabla.tensor(
  nabla.fromFloat32(waveTokens(shape.B, shape.H, grid, shape.D, 21), 'bfloat16'),
  dims,
  'bfloat16',
);
const kh = nabla.tensor(
  nabla.fromFloat32(waveTokens(shape.B, shape.H, grid, shape.D, 22), 'bfloat16'),
  dims,
  'bfloat16',
);
const vh = nabla.tensor(nabla.fromFloat32(uniform(qh.data.length, 23), 'bfloat16'), dims, 'bfloat16');
const genMs = performance.now() - tGen0;

/** The options of every request (and of the warm-up that prepares for them). */
const REQUEST_OPTIONS = { threshold: THRESHOLD, grid, ...PLACE };

/** One service request: upload, NABLA attention, download, free. */
function request() {
  const q = upload(qh),
    k = upload(kh),
    v = upload(vh);
  try {
    const { output, mask } = nabla.nablaAttentionSync(q, k, v, REQUEST_OPTIONS);
    try {
      return download(output);
    } finally {
      free(output);
      free(mask);
    }
  } finally {
    free(q);
    free(k);
    free(v);
  }
}

/** @param {() => unknown} fn */
function timed(fn) {
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
}

/**
 * Median wall time of an op, after 20 untimed calls; `done` frees each result untimed.
 * @template T
 * @param {() => T | Promise<T>} fn
 * @param {(x: T) => void} done
 * @param {number} calls
 */
async function medianWall(fn, done, calls) {
  for (let i = 0; i < 20; i++) done(await fn());
  /** @type {number[]} */
  const times = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    const r = await fn();
    times.push(performance.now() - t0);
    done(r);
  }
  return summarize(times).median;
}

// ---------------------------------------------------------------------------------------------
// 1. Start-up against the steady state

function startup() {
  const first = timed(request);
  const firstResult = /** @type {Tensor} */ (first.result);
  const second = timed(request);
  /** @type {number[]} */
  const steadyTimes = [];
  let changed = differing(/** @type {Tensor} */ (second.result), firstResult);
  for (let i = 0; i < args.requests; i++) {
    const r = timed(request);
    steadyTimes.push(r.ms);
    changed += differing(/** @type {Tensor} */ (r.result), firstResult);
  }
  const steady = summarize(steadyTimes).median;
  const startToFirst = tLoaded + first.ms; // input generation (the harness's, not the service's) left out
  row(
    'process start -> package loaded',
    'INFO',
    ms(tLoaded),
    '',
    `node start-up, then require of the package (this script began ${ms(t00)} after the process)`,
  );
  row(
    'first request',
    'INFO',
    ms(first.ms),
    '',
    ON_CUDA ? 'includes CUDA context creation and module loading' : 'CPU backend',
  );
  row(
    'process start -> first result',
    'INFO',
    ms(startToFirst),
    '',
    `package loaded + first request; input generation (${ms(genMs)}) left out`,
  );
  row(
    `steady request (median of ${args.requests})`,
    'INFO',
    ms(steady),
    '',
    `${shapeText}, NABLA thr ${THRESHOLD}: ${ON_CUDA ? 'upload q/k/v, mask, sparse attention, download, free' : 'mask, sparse attention'}`,
  );
  row(
    'first request / steady',
    first.ms <= FIRST_REQUEST_TARGET * steady ? 'MET' : 'MISSED',
    `${(first.ms / steady).toFixed(2)}x`,
    `<= ${FIRST_REQUEST_TARGET}x`,
    `second request ${(second.ms / steady).toFixed(2)}x; process start -> first result ${(startToFirst / steady).toFixed(1)}x`,
  );
  row(
    'every request gives the first result',
    changed === 0 ? 'PASS' : 'FAIL',
    `${changed} elements differ`,
    '0',
    `${args.requests + 1} later requests, bit for bit`,
  );
  return { reference: firstResult, steady };
}

// ---------------------------------------------------------------------------------------------
// 1b. The cold start split (context creation vs the rest), and warmUp: fresh child processes (this
//     script with --child) run the request function above and report one JSON line.

/** @param {Tensor} t */
function sha256(t) {
  return crypto
    .createHash('sha256')
    .update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
    .digest('hex');
}

/**
 * In a child process: the timed first CUDA call then the first request ('context'), or warmUp then
 * the first request ('warmup'). Prints { ...times, hash } (the hash of the first request's output).
 * @param {'context' | 'warmup'} mode
 */
async function child(mode) {
  /** @type {Record<string, unknown>} */
  const report = {};
  if (mode === 'context') {
    const t0 = performance.now();
    nabla.deviceMemory(0); // the first CUDA call: context, this package's stream and pool
    report.contextMs = performance.now() - t0;
  } else {
    const t0 = performance.now();
    const warm = await nabla.warmUp({ dims, type: 'bfloat16' }, REQUEST_OPTIONS);
    report.warmUpMs = performance.now() - t0;
    report.kernels = warm.kernels;
  }
  const first = timed(request);
  report.firstMs = first.ms;
  report.hash = sha256(/** @type {Tensor} */ (first.result));
  console.log(JSON.stringify(report));
}

/**
 * Runs this script as a fresh child process in `mode`; its last stdout line is JSON.
 * @param {'context' | 'warmup'} mode
 * @returns {{ ok: true, report: Record<string, any> } | { ok: false, why: string }}
 */
function runChild(mode) {
  const r = childProcess.spawnSync(
    process.execPath,
    [__filename, '--child', mode, '--backend', BACKEND, '--shape', shapeName],
    { encoding: 'utf8' },
  );
  if (r.status !== 0 || r.signal !== null)
    return { ok: false, why: `child exited ${r.status ?? r.signal}: ${(r.stderr || '').trim().split('\n').pop()}` };
  try {
    return { ok: true, report: JSON.parse(r.stdout.trim().split('\n').pop() ?? '') };
  } catch {
    return { ok: false, why: `child printed no JSON: ${r.stdout.trim().slice(-200)}` };
  }
}

/**
 * @param {Tensor} reference the first request's result in this process
 * @param {number} steady this process's steady request (ms)
 */
function coldStartSplit(reference, steady) {
  const contextCheck = 'first CUDA call (context creation)';
  const restCheck = 'first request after the first CUDA call';
  if (!ON_CUDA) {
    skip(contextCheck, NOT_CUDA);
    skip(restCheck, NOT_CUDA);
  } else {
    const c = runChild('context');
    if (!c.ok) {
      row(contextCheck, 'FAIL', c.why, '', 'fresh child process');
      skip(restCheck, 'the child process failed');
    } else {
      row(
        contextCheck,
        'INFO',
        ms(c.report.contextMs),
        '',
        'deviceMemory(0) in a fresh process before any op: context, stream and memory pool',
      );
      row(
        restCheck,
        'INFO',
        ms(c.report.firstMs),
        '',
        `${(c.report.firstMs / steady).toFixed(2)}x steady: the cold first request less the context (kernel loading, pool growth, host copies)`,
      );
    }
  }
  const w = runChild('warmup');
  const warmUpCheck = 'warmUp ms';
  const afterCheck = 'first request after warmUp / steady';
  const sameCheck = 'first request after warmUp gives the first result';
  if (!w.ok) {
    row(warmUpCheck, 'FAIL', w.why, '', 'fresh child process');
    skip(afterCheck, 'the child process failed');
    skip(sameCheck, 'the child process failed');
    return;
  }
  const { warmUpMs, firstMs, kernels, hash } = w.report;
  row(
    warmUpCheck,
    'INFO',
    ms(warmUpMs),
    '',
    `await warmUp({ dims, type }, the request's options) in a fresh process; kernels: mask ${kernels.mask}, attention ${kernels.attention}`,
  );
  row(
    afterCheck,
    firstMs <= FIRST_REQUEST_TARGET * steady ? 'MET' : 'MISSED',
    `${(firstMs / steady).toFixed(2)}x`,
    `<= ${FIRST_REQUEST_TARGET}x`,
    `${ms(firstMs)} in the warmed-up process against this process's steady ${ms(steady)}`,
  );
  const same = hash === sha256(reference);
  row(
    sameCheck,
    same ? 'PASS' : 'FAIL',
    same ? 'same bits' : 'different bits',
    'same bits',
    "sha256 of the output, against this process's first request",
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Host overhead per op: wall time of ops whose kernels take microseconds (one 64-token block,
//    D = 64): what every call pays besides its kernels (checks, allocation, launch, sync).

async function hostOverhead() {
  const th = nabla.tensor(nabla.fromFloat32(uniform(64 * 64, 31), 'bfloat16'), [1, 1, 64, 64], 'bfloat16');
  const t = upload(th);
  const where = `${ON_CUDA ? 'device' : 'host'} tensors [1, 1, 64, 64] bf16, median of 200`;
  try {
    const sync = await medianWall(() => nabla.attentionSync(t, t, t, PLACE), free, 200);
    row('host overhead per op: attentionSync', 'INFO', ms(sync), '', `${where}; wall time, kernel time negligible`);
    const async = await medianWall(() => nabla.attention(t, t, t, PLACE), free, 200);
    row(
      'host overhead per op: await attention',
      'INFO',
      ms(async),
      '',
      `${where}; includes the hop to the worker thread and back`,
    );
  } finally {
    free(t);
  }
}

// ---------------------------------------------------------------------------------------------
// 3. Device memory over many calls

/**
 * Bytes of the package's device memory pool on device 0 (deviceMemory(): in use and reserved), so
 * growth over many calls shows a leak (in use) or a pool that keeps growing (reserved).
 * @returns {{ used: number, reserved: number, source: string } | { why: string }}
 */
function deviceMemoryUsed() {
  try {
    const m = nabla.deviceMemory(0);
    return { used: m.inUse, reserved: m.reserved, source: 'deviceMemory() (in use; reserved beside it)' };
  } catch (err) {
    return { why: `deviceMemory() failed: ${/** @type {Error} */ (err).message}` };
  }
}

function memoryLoop() {
  const check = `device memory over ${args.calls} calls`;
  if (!ON_CUDA) return skip(check, NOT_CUDA);
  const q = upload(qh),
    k = upload(kh),
    v = upload(vh);
  try {
    const step = () => {
      const { output, mask } = nabla.nablaAttentionSync(q, k, v, REQUEST_OPTIONS);
      free(output);
      free(mask);
    };
    for (let i = 0; i < 10; i++) step();
    const before = deviceMemoryUsed();
    if (!('used' in before)) return skip(check, before.why);
    /** @type {number[]} */
    const times = [];
    for (let i = 0; i < args.calls; i++) {
      const t0 = performance.now();
      step();
      times.push(performance.now() - t0);
    }
    const after = deviceMemoryUsed();
    if (!('used' in after)) return skip(check, after.why);
    const growth = after.used - before.used;
    const reserved = `; reserved ${mib(before.reserved)} -> ${mib(after.reserved)}`;
    row(
      check,
      growth <= FLAT_MEMORY_BYTES ? 'PASS' : 'FAIL',
      `${mib(before.used)} -> ${mib(after.used)} (${growth >= 0 ? '+' : ''}${mib(growth)})${reserved}`,
      `growth <= ${mib(FLAT_MEMORY_BYTES)}`,
      `nablaAttentionSync on device tensors, output and mask disposed each call; ${before.source}`,
    );
    row(
      `steady op on device tensors (median of ${args.calls})`,
      'INFO',
      ms(summarize(times).median),
      '',
      `${shapeText}: mask + sparse attention, no copies`,
    );
  } finally {
    free(q);
    free(k);
    free(v);
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Out of memory: fill the device, run an op (it must throw a catchable error), free, run again.

/** @param {Tensor} reference the first request's result */
function outOfMemory(reference) {
  const check = 'out of memory leaves the device usable';
  if (!ON_CUDA) return skip(check, NOT_CUDA);
  if (!args.oom) return skip(check, '--no-oom');
  const q = upload(qh),
    k = upload(kh),
    v = upload(vh);
  /** @type {DeviceTensor[]} */
  const hoard = [];
  let allocError = '';
  let opWhileFull = 'not run';
  try {
    // 2 GiB, then 256 MiB, then 16 MiB pieces until each size fails: the device is then full
    for (const elements of [2 ** 29, 2 ** 26, 2 ** 22]) {
      for (let i = 0; i < 1000; i++) {
        try {
          hoard.push(nabla.emptyDevice([elements], 'float32'));
        } catch (e) {
          allocError = `${codeOf(e)}: ${firstLine(e)}`;
          break;
        }
      }
    }
    try {
      const { output, mask } = nabla.nablaAttentionSync(q, k, v, REQUEST_OPTIONS);
      free(output);
      free(mask);
      opWhileFull = 'ran (it found room)';
    } catch (e) {
      opWhileFull = `threw ${codeOf(e)}`;
    }
  } finally {
    for (const t of hoard) free(t);
  }
  const held = hoard.length;
  let after;
  try {
    const { output, mask } = nabla.nablaAttentionSync(q, k, v, REQUEST_OPTIONS);
    after = download(output);
    free(output);
    free(mask);
  } catch (e) {
    row(
      check,
      'FAIL',
      `op after freeing threw ${codeOf(e)}: ${firstLine(e)}`,
      'the op runs and matches',
      `${held} allocations held; op while full: ${opWhileFull}`,
    );
    return;
  } finally {
    free(q);
    free(k);
    free(v);
  }
  const diff = differing(after, reference);
  const ok = allocError !== '' && diff === 0;
  row(
    check,
    ok ? 'PASS' : 'FAIL',
    `${diff} elements differ from the first result`,
    'an allocation fails; then 0 differ',
    `${held} allocations held, last: ${allocError || 'none failed'}; op while full: ${opWhileFull}`,
  );
}

// ---------------------------------------------------------------------------------------------
// 5. dispose() while an op is pending: refused, and the op completes with the right result.

/** @param {Tensor} reference */
async function disposePending(reference) {
  const check = 'dispose while an op is pending';
  if (!ON_CUDA) return skip(check, NOT_CUDA);
  const q = nabla.toDeviceSync(qh),
    k = nabla.toDeviceSync(kh),
    v = nabla.toDeviceSync(vh);
  try {
    const mask = nabla.nablaMaskSync(q, k, REQUEST_OPTIONS);
    const pending = nabla.blockSparseAttention(q, k, v, mask, PLACE);
    /** @type {string[]} */
    const refused = [];
    for (const [name, x] of /** @type {const} */ ([
      ['q', q],
      ['v', v],
      ['mask', mask],
    ])) {
      try {
        x.dispose();
      } catch (e) {
        refused.push(`${name}: ${codeOf(e)}`);
      }
    }
    const output = await pending;
    const result = download(output);
    free(output);
    const diff = differing(result, reference);
    mask.dispose();
    q.dispose();
    const freedAfter = mask.disposed && q.disposed;
    const ok = refused.length === 3 && diff === 0 && freedAfter;
    row(
      check,
      ok ? 'PASS' : 'FAIL',
      `${refused.length}/3 refused; ${diff} elements differ`,
      '3/3 refused, 0 differ, dispose works after',
      `${refused.join(', ') || 'none refused'}; disposed after the op: ${freedAfter}`,
    );
  } catch (e) {
    row(check, 'FAIL', `threw ${codeOf(e)}: ${firstLine(e)}`, '3/3 refused, 0 differ', '');
  } finally {
    free(q);
    free(k);
    free(v);
  }
}

// ---------------------------------------------------------------------------------------------
// 6. Async upload (toDevice, off the main thread) gives the same bytes as the host tensor.

async function asyncUpload() {
  const check = 'async upload gives the same bytes';
  if (!ON_CUDA) return skip(check, NOT_CUDA);
  const n = 3 * 2 ** 22 + 5; // 12M bf16 values and a ragged tail
  const hosts = [41, 42, 43].map((seed) =>
    nabla.tensor(nabla.fromFloat32(uniform(n, seed), 'bfloat16'), [n], 'bfloat16'),
  );
  /** @type {DeviceTensor[]} */
  let devs = [];
  try {
    devs = await Promise.all(hosts.map((h) => nabla.toDevice(h)));
    const back = await Promise.all(devs.map((d) => d.toHost()));
    const syncBack = devs.map((d) => d.toHostSync());
    const diff = hosts.reduce((sum, h, i) => sum + differing(back[i], h) + differing(syncBack[i], h), 0);
    row(
      check,
      diff === 0 ? 'PASS' : 'FAIL',
      `${diff} elements differ`,
      '0',
      `3 concurrent toDevice of ${n} bf16 values, read back with toHost and toHostSync`,
    );
  } catch (e) {
    row(check, 'FAIL', `threw ${codeOf(e)}: ${firstLine(e)}`, '0 differ', '');
  } finally {
    for (const d of devs) free(d);
  }
}

// ---------------------------------------------------------------------------------------------
// 7. Interop with other GPU code: an op on wrapped memory (fromDevicePointer over our own tensors'
//    pointers) gives the first request's result; waits across streams in both directions, with
//    the test-only probe addon standing in for another library (a CUDA build of a checkout makes
//    build/Release/nabla_interop_probe.node); the host cost of a wait and of an event.

const PROBE_PATH = path.join(__dirname, '..', 'build', 'Release', 'nabla_interop_probe.node');

/** @param {Tensor} reference */
function interopWrapped(reference) {
  const check = 'interop: op on wrapped device memory';
  if (!ON_CUDA) return skip(check, NOT_CUDA);
  const owned = [qh, kh, vh].map((t) => nabla.toDeviceSync(t));
  /** @type {DeviceTensor[]} */
  let wraps = [];
  try {
    wraps = owned.map((t) =>
      nabla.fromDevicePointer({ pointer: t.pointer, dims: t.dims, type: t.type, device: t.device, owner: t }),
    );
    const { output, mask } = nabla.nablaAttentionSync(wraps[0], wraps[1], wraps[2], REQUEST_OPTIONS);
    const result = download(output);
    free(output);
    free(mask);
    const diff = differing(result, reference);
    const aliased = wraps.every((w, i) => w.pointer === owned[i].pointer && w.external && !owned[i].external);
    row(
      check,
      diff === 0 && aliased ? 'PASS' : 'FAIL',
      `${diff} elements differ`,
      '0 differ, the wraps alias the tensors',
      `nablaAttentionSync on fromDevicePointer wraps of q, k, v; aliased: ${aliased}`,
    );
  } catch (e) {
    row(check, 'FAIL', `threw ${codeOf(e)}: ${firstLine(e)}`, '0 differ', '');
  } finally {
    for (const t of [...wraps, ...owned]) free(t);
  }
}

function interopOrdering() {
  const check = 'interop: waits across streams';
  if (!ON_CUDA) return skip(check, NOT_CUDA);
  if (!fs.existsSync(PROBE_PATH))
    return skip(check, `no ${path.relative(process.cwd(), PROBE_PATH)} (a CMake CUDA build makes it)`);
  const probe = require(PROBE_PATH);
  const n = 1 << 22;
  const delayMs = 200;
  const stream = probe.createStream(0);
  const theirs = probe.malloc(0, n * 4);
  const wrapped = nabla.fromDevicePointer({ pointer: theirs, dims: [n], type: 'float32', device: 0, owner: null });
  const ours = nabla.emptyDevice([n], 'float32');
  /** @param {DeviceTensor} t @param {number} value */
  const wrong = (t, value) => t.toHostSync().data.filter((x) => x !== value).length;
  try {
    // theirs -> ours: their late write, then our read after waitForExternal
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(0, stream, theirs, n, 7, delayMs);
    nabla.waitForExternal(0, { stream });
    const intoOurs = wrong(wrapped, 7);
    // ours -> theirs: a late write on our stream, then their copy after our event
    ours.buffer.fill(0);
    wrapped.buffer.fill(0);
    probe.fillAfterDelay(0, nabla.deviceStream(0), ours.pointer, n, 5, delayMs);
    const event = nabla.recordEvent(0);
    probe.waitEvent(stream, event.handle);
    probe.copy(0, stream, theirs, ours.pointer, n * 4);
    event.dispose();
    probe.synchronize(stream);
    const intoTheirs = wrong(wrapped, 5);
    nabla.waitForExternal(0, { stream });
    row(
      check,
      intoOurs === 0 && intoTheirs === 0 ? 'PASS' : 'FAIL',
      `${intoOurs} + ${intoTheirs} elements wrong`,
      '0 + 0',
      `${n} floats written ${delayMs} ms late on one stream, read on the other: waitForExternal, then recordEvent`,
    );
  } catch (e) {
    row(check, 'FAIL', `threw ${codeOf(e)}: ${firstLine(e)}`, '0 + 0', '');
  } finally {
    free(wrapped);
    free(ours);
    probe.free(theirs);
    probe.destroyStream(stream);
  }
}

async function interopCost() {
  const check = 'interop: host cost of waitForExternal + recordEvent';
  if (!ON_CUDA) return skip(check, NOT_CUDA);
  const stream = nabla.deviceStream(0);
  const perCall = await medianWall(
    () => {
      const event = nabla.recordEvent(0);
      nabla.waitForExternal(0, { stream });
      return event;
    },
    (event) => event.dispose(),
    1000,
  );
  row(check, 'INFO', ms(perCall), '', 'one recordEvent and one waitForExternal on the device stream, median of 1000');
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const { reference, steady } = startup();
  coldStartSplit(reference, steady);
  await hostOverhead();
  memoryLoop();
  await disposePending(reference);
  await asyncUpload();
  interopWrapped(reference);
  interopOrdering();
  await interopCost();
  outOfMemory(reference);

  const device = ON_CUDA ? `${info.devices[0].name} (cc ${info.devices[0].computeCapability})` : 'the CPU backend';
  const text = [`## service-check on ${device}, ${shapeText}, ${new Date().toISOString()}`, ''];
  if (!info.cuda) text.push(`No CUDA: ${info.reason ?? 'unknown reason'}`, '');
  text.push(markdownTable(rows), '');
  const failed = rows.filter((r) => r.result === 'FAIL').length;
  text.push(
    `service-check: ${rows.filter((r) => r.result === 'PASS').length} passed, ${failed} failed, ` +
      `${rows.filter((r) => r.result === 'MISSED').length} targets missed, ${rows.filter((r) => r.result === 'SKIPPED').length} skipped (${BACKEND})`,
  );
  console.log(text.join('\n'));
  if (args.out) {
    fs.mkdirSync(args.out, { recursive: true });
    fs.writeFileSync(path.join(args.out, 'service-check.md'), `${text.join('\n')}\n`);
    fs.writeFileSync(
      path.join(args.out, 'service-check.json'),
      `${JSON.stringify({ backend: BACKEND, device, shape: shapeText, rows }, null, 2)}\n`,
    );
  }
  process.exitCode = failed > 0 ? 1 : 0;
}

(args.child ? child(args.child) : main()).catch((e) => {
  console.error(`service-check: ${e instanceof Error ? e.stack : e}`);
  process.exitCode = 1;
});
