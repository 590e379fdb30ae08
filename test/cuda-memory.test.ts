// The device memory pool on a CUDA device: what deviceMemory() reports as tensors come and go,
// reuse without growing, trimDeviceMemory(), stream-ordered frees under a pending op, and out of
// memory. Skipped, with the reason printed, where no CUDA device can be used; NABLA_REQUIRE_CUDA=1
// turns that skip into a failure (GPU machines).
//
// Other test files may share this process and its pool, and the garbage collector may free their
// tensors at any time: assertions are about this file's own allocations (differences, and bounds
// that frees elsewhere cannot break), never about the pool being empty.
import {
  blockPool,
  blockPoolSync,
  deviceMemory,
  emptyDevice,
  nablaAttention,
  nablaAttentionSync,
  tensor,
  toDevice,
  toDeviceSync,
  trimDeviceMemory,
} from '../lib';
import { native } from '../lib/native';
import { randn } from './reference';
import { CPU, cudaSuite } from './helpers';

const describeCuda = cudaSuite('CUDA memory tests');
const MiB = 1024 * 1024;

describeCuda('CUDA device memory pool', () => {
  test('deviceMemory() counts a live tensor in inUse and reserved, and dispose() takes it out', () => {
    const bytes = 64 * MiB;
    const before = deviceMemory();
    expect(before.reserved).toBeGreaterThanOrEqual(before.inUse);
    const t = emptyDevice([bytes / 4], 'float32');
    const live = deviceMemory(0);
    // frees elsewhere can only lower inUse: at least this tensor's bytes were added
    expect(live.inUse).toBeGreaterThanOrEqual(bytes);
    expect(live.reserved).toBeGreaterThanOrEqual(live.inUse);
    t.dispose();
    trimDeviceMemory();
    const after = deviceMemory();
    expect(after.inUse).toBeLessThanOrEqual(live.inUse - bytes);
  });

  test('memory freed on the stream is reused: the same size again reserves nothing new', () => {
    const bytes = 32 * MiB;
    const first = emptyDevice([bytes / 4], 'float32');
    const reservedFirst = deviceMemory().reserved;
    first.dispose();
    for (let i = 0; i < 20; i++) emptyDevice([bytes / 4], 'float32').dispose();
    const again = emptyDevice([bytes / 4], 'float32');
    // nothing here trims, and nothing else allocates: the pool can only have kept its size
    expect(deviceMemory().reserved).toBeLessThanOrEqual(reservedFirst);
    again.dispose();
  });

  test('trimDeviceMemory() returns freed memory to the device and keeps live tensors', async () => {
    const bytes = 256 * MiB;
    // no free memory left in the pool, and the small tensor first: the big one then gets memory
    // of its own from the device, which holds nothing else when it is freed
    trimDeviceMemory();
    const x = tensor(randn(64 * 16, 3), [1, 1, 64, 16]);
    const kept = await toDevice(x);
    const big = emptyDevice([bytes / 4], 'float32');
    const held = deviceMemory().reserved;
    big.dispose();
    trimDeviceMemory();
    expect(deviceMemory().reserved).toBeLessThanOrEqual(held - bytes);
    // the live tensor's contents survived the trim
    expect(Array.from((await kept.toHost()).data)).toEqual(Array.from(x.data));
    kept.dispose();
  });

  test('frees enqueued while an op runs do not hand its memory to later work early', async () => {
    // Buffers freed and reallocated (and overwritten) on the main thread while ops run on a
    // worker thread: every op's result must still equal the CPU's.
    const x = tensor(randn(2 * 4 * 1024 * 64, 5), [2, 4, 1024, 64]);
    const expected = blockPoolSync(x, CPU).data;
    const xd = await toDevice(x);
    for (let round = 0; round < 8; round++) {
      const pending = blockPool(xd);
      for (let i = 0; i < 4; i++) {
        const junk = emptyDevice([xd.dims.reduce((a, b) => a * b, 1)], 'float32');
        junk.buffer.fill(0xff); // NaN bit patterns
        junk.dispose();
      }
      const out = await pending;
      const got = (await out.toHost()).data;
      out.dispose();
      for (let i = 0; i < expected.length; i++) expect(Math.abs(got[i] - expected[i])).toBeLessThan(1e-5);
    }
    xd.dispose();
  });

  test('bodyTime counts each timed op once, with a positive device time, and nothing when off', async () => {
    const xd = await toDevice(tensor(randn(64 * 64, 7), [1, 1, 64, 64]));
    native.bodyTime(false); // reset
    blockPoolSync(xd).dispose();
    expect(native.bodyTime(true)).toEqual({ ms: 0, ops: 0 });
    blockPoolSync(xd).dispose();
    (await blockPool(xd)).dispose();
    const timed = native.bodyTime(false);
    expect(timed.ops).toBe(2);
    expect(timed.ms).toBeGreaterThan(0);
    xd.dispose();
  });

  test('out of memory is a catchable Error with its code, and the pool stays usable', () => {
    let caught: (Error & { code?: string; cudaError?: number }) | undefined;
    try {
      new native.DeviceBuffer(0, 2 ** 50);
    } catch (e) {
      caught = e as Error & { code?: string };
    }
    expect(caught?.code).toBe('cudaErrorMemoryAllocation');
    expect(caught?.cudaError).toBe(2);
    const usage = deviceMemory();
    expect(usage.reserved).toBeGreaterThanOrEqual(usage.inUse);
    const t = emptyDevice([1024], 'float32');
    t.buffer.fill(0);
    t.dispose();
  });

  test('a NABLA step whose attention fails after its mask was built frees that mask (sync and async)', async () => {
    // float32 inputs: the mask runs, then the fast kernel refuses them. 256 x 256 blocks: the
    // mask's lists are 257 KiB, which the caller never receives and could not dispose.
    const S = 256 * 64;
    const [q, k, v] = [1, 2, 3].map((seed) => toDeviceSync(tensor(randn(S * 64, seed), [1, 1, S, 64])));
    const listBytes = 256 * 4 + 256 * 256 * 4;
    const sync = () => {
      blockPoolSync(q).dispose(); // a sync op on the stream: every free enqueued before it is done
      return deviceMemory().inUse;
    };
    const before = sync();
    expect(() => nablaAttentionSync(q, k, v, { kernel: 'fast' })).toThrow(/fast attention kernel does not apply/);
    // frees elsewhere can only lower inUse: a leaked mask would add its lists
    expect(sync()).toBeLessThan(before + listBytes);
    await expect(nablaAttention(q, k, v, { kernel: 'fast' })).rejects.toThrow(/fast attention kernel does not apply/);
    expect(sync()).toBeLessThan(before + listBytes);
    for (const t of [q, k, v]) t.dispose();
  });
});
