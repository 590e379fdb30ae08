// The CPU mask orders a row's blocks by P exactly, even where two probabilities differ only in
// their last few bits (docs/nabla.md 1.3: ascending P, equal P by higher index first). Such
// near-ties are what a sort on rounded keys gets wrong, and random inputs almost never make them.
import { nablaMaskSync, tensor } from '../lib';
import { CPU } from './helpers';

describe('near-equal probabilities', () => {
  // D = 8, every q token (1, 2^-30, 0, ...), so logit_j = k_j[0] + 2^-30 k_j[1] (exact in fp64). Pair m
  // (blocks 2m, 2m+1) has logits L_m = -m/2 and L_m + 2^-50: block 2m+1 is the larger by a few
  // units in the last place of P, and the lower id is the smaller one. The other blocks share
  // logit -8. topk keeping K = 2m+1 blocks must take pairs 0 .. m-1 and block 2m+1 (never 2m).
  const nk = 64,
    pairs = 8,
    D = 8,
    S = nk * 64;
  const q = new Float32Array(S * D),
    k = new Float32Array(S * D);
  for (let t = 0; t < S; t++) {
    q[t * D] = 1;
    q[t * D + 1] = 2 ** -30;
    const block = Math.floor(t / 64),
      m = block >> 1;
    k[t * D] = m < pairs ? -m / 2 : -8;
    k[t * D + 1] = m < pairs && block % 2 === 1 ? 2 ** -20 : 0;
  }
  const qt = tensor(q, [1, 1, S, D]),
    kt = tensor(k, [1, 1, S, D]);

  it.each(Array.from({ length: pairs }, (_, m) => m))('topk keeping the larger of pair %i', (m) => {
    const K = 2 * m + 1;
    const mask = nablaMaskSync(qt, kt, { threshold: (K + 0.5) / nk, method: 'topk', ...CPU });
    const expected = [...Array.from({ length: 2 * m }, (_, j) => j), K];
    const counts = mask.kvCounts,
      indices = mask.kvIndices;
    for (let r = 0; r < nk; r++) {
      expect(counts[r]).toBe(K);
      expect(Array.from(indices.subarray(r * nk, r * nk + K))).toEqual(expected);
    }
  });
});
