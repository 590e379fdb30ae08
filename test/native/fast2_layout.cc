// Host test of the fast2 attention kernel's index math (csrc/cuda/attention_fast2_layout.h), with the
// kernel's loops replayed over a model of ldmatrix.x4 (plain and .trans) and mma.m16n8k16 as the PTX
// ISA defines their fragments (csrc/cuda/ptx.cuh has the glossary). Checks:
//   - swizzledOffset (tile_swizzle.h: the one layout the fast and fast2 kernels' tile copy, ldmatrix
//     reads and output staging use) is a permutation of each tile row's 16-byte chunks, and the 8
//     rows of every ldmatrix phase land in 8 different bank groups;
//   - steppedOffset (one XOR + a constant) equals the swizzled offset of every spot the kernel reads;
//   - S = Q K^T and O = P V computed through the warp grid's fragments equal the direct products at
//     the (row, key) and (row, column) the glossary gives, and the 4 warps cover each of the 64 x 64
//     (row, key) pairs once; partner warps hold the same rows and columns in the same lanes;
//   - the online softmax per key half (rowStep: exponentBase, the skipped rescale) merged with
//     mergeWeights equals a direct softmax, also when a half sees only masked keys;
//   - the same through the kernel's own per-lane step (softmaxRowTile: laneScoreMax, probability,
//     updatedRowSum; keyMasked on ragged tiles), replayed for every lane of the two warps of a row
//     half with the quad's max reduction and the warp-level rescale rule (__any_sync over a row tile);
//   - the cp.async pipeline (tileStage, prologueTiles, pendingCopyGroups, tileIssuedAt) under random
//     interleavings of the 4 warps and of the copies landing: every tile is complete when read and
//     no copy is issued into or lands in a stage while a warp reads it;
//   - the epilogue's exchange slots: each output element is merged once, from the same row and
//     column of the partner warp;
//   - blockSpan (32-bit divisions) equals TileLayout::blockStart / blockLength.
#include <algorithm>
#include <array>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/cuda/attention_fast2_layout.h"
#include "check.h"

using namespace nabla::cuda::fast2;
using nabla::TileLayout;
using nabla::cuda::swizzledOffset;

namespace {

// A shared-memory tile of 64 rows x headDim, stored swizzled as the kernel stores it.
struct Tile {
  int headDim;
  std::vector<float> data;
  explicit Tile(int d) : headDim(d), data(64 * d) {}
  float at(int row, int col) const { return data[swizzledOffset(headDim, row, col)]; }
  float atOffset(int offset) const { return data[offset]; }
};

// One b32 register: two b16 elements, the lower-indexed one first.
struct Pair {
  float lo = 0, hi = 0;
};
using Fragment = Pair[32][4];  // [lane][register]

// ldmatrix.x4: lane l's address (an element offset of a row of 8) feeds matrix l / 8, row l % 8;
// register m of lane l receives matrix m's row l / 4, elements 2 (l % 4), + 1 (transposed: its
// column l / 4, rows 2 (l % 4), + 1).
void loadMatrix(const Tile& tile, const int (&offset)[32], bool transposed, Fragment& out) {
  for (int lane = 0; lane < 32; ++lane)
    for (int m = 0; m < 4; ++m) {
      const int c = lane % 4, g = lane / 4;
      if (!transposed) {
        const int base = offset[8 * m + g];
        out[lane][m] = {tile.atOffset(base + 2 * c), tile.atOffset(base + 2 * c + 1)};
      } else {
        out[lane][m] = {tile.atOffset(offset[8 * m + 2 * c] + g), tile.atOffset(offset[8 * m + 2 * c + 1] + g)};
      }
    }
}

// C (16x8, fp32 per lane [4]) += A (16x16: regs a[0..3]) B (16x8: regs b0, b1), PTX fragment layouts.
void mma(float (&c)[32][4], const Pair (&a)[32][4], const Pair (&b0)[32], const Pair (&b1)[32]) {
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, k = 2 * (lane % 4);
    const Pair* r = a[lane];
    A[g][k] = r[0].lo, A[g][k + 1] = r[0].hi, A[g + 8][k] = r[1].lo, A[g + 8][k + 1] = r[1].hi;
    A[g][k + 8] = r[2].lo, A[g][k + 9] = r[2].hi, A[g + 8][k + 8] = r[3].lo, A[g + 8][k + 9] = r[3].hi;
    B[k][g] = b0[lane].lo, B[k + 1][g] = b0[lane].hi, B[k + 8][g] = b1[lane].lo, B[k + 9][g] = b1[lane].hi;
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane / 4, n = 2 * (lane % 4);
    for (int e = 0; e < 4; ++e) {
      const int row = g + 8 * (e / 2), col = n + e % 2;
      float sum = 0;
      for (int kk = 0; kk < 16; ++kk) sum += A[row][kk] * B[kk][col];
      c[lane][e] += sum;
    }
  }
}

// Small integers: every product and sum is exact in float.
void fillTile(Tile& tile, std::mt19937& random) {
  std::uniform_int_distribution<int> value(-3, 3);
  for (int row = 0; row < 64; ++row)
    for (int col = 0; col < tile.headDim; ++col)
      tile.data[swizzledOffset(tile.headDim, row, col)] = float(value(random));
}

// The swizzle keeps each row's elements in the row, each 16-byte chunk contiguous (cp.async and
// ldmatrix move whole chunks), and puts the 8 rows of each ldmatrix phase (8 consecutive rows at
// one column chunk; every spot the kernels read starts at a row multiple of 8 plus lane % 8) in 8
// different 16-byte bank groups of a 128-byte line.
void checkSwizzle(int headDim) {
  std::vector<int> hits(64 * headDim, 0);
  for (int row = 0; row < 64; ++row)
    for (int col = 0; col < headDim; ++col) {
      const int offset = swizzledOffset(headDim, row, col);
      const bool inside = offset >= row * headDim && offset < (row + 1) * headDim;
      CHECK(inside && offset % 8 == col % 8, "D%d (%d, %d) -> %d", headDim, row, col, offset);
      if (inside) ++hits[offset];
    }
  for (int i = 0; i < 64 * headDim; ++i) CHECK(hits[i] == 1, "D%d offset %d hit %d times", headDim, i, hits[i]);
  for (int first = 0; first < 64; first += 8)
    for (int col = 0; col < headDim; col += 8) {
      int groups = 0;  // bit g: bank group g taken
      for (int row = first; row < first + 8; ++row) groups |= 1 << ((swizzledOffset(headDim, row, col) / 8) % 8);
      CHECK(groups == 0xff, "D%d rows %d.. at column %d share bank groups (0x%x)", headDim, first, col, groups);
    }
}

void checkOffsets(int headDim) {
  for (int warp = 0; warp < kWarps; ++warp)
    for (int lane = 0; lane < 32; ++lane) {
      const auto offsetOf = [&](TileSpot spot) { return swizzledOffset(headDim, spot.row, spot.col); };
      const int q0 = offsetOf(queryFragmentSpot(warp, lane, 0, 0)), k0 = offsetOf(keyFragmentSpot(warp, lane, 0, 0));
      const int v0 = offsetOf(valueFragmentSpot(warp, lane, 0, 0));
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < headDim / 16; ++b) {
          CHECK(steppedOffset(headDim, q0, a, b) == offsetOf(queryFragmentSpot(warp, lane, a, b)),
                "query D%d warp %d lane %d mt %d kk %d", headDim, warp, lane, a, b);
          CHECK(steppedOffset(headDim, k0, a, b) == offsetOf(keyFragmentSpot(warp, lane, a, b)),
                "key D%d warp %d lane %d pair %d kk %d", headDim, warp, lane, a, b);
          CHECK(steppedOffset(headDim, v0, a, b) == offsetOf(valueFragmentSpot(warp, lane, a, b)),
                "value D%d warp %d lane %d kk %d pair %d", headDim, warp, lane, a, b);
        }
    }
}

// The kernel's S = Q K^T and O += P V loops for one tile, every warp, through the models; P is S
// itself (exact small integers) so that O = S V is checkable directly.
void checkProducts(int headDim, std::mt19937& random) {
  Tile q(headDim), k(headDim), v(headDim);
  fillTile(q, random), fillTile(k, random), fillTile(v, random);
  std::vector<int> covered(64 * 64, 0);
  std::vector<int> rowOf(kWarps * 32 * kRowsPerLane);
  for (int warp = 0; warp < kWarps; ++warp) {
    static float s[kRowTiles][kKeyTiles][32][4];
    for (auto& a : s)
      for (auto& b : a)
        for (auto& c : b) std::fill(c, c + 4, 0.f);
    const auto spotOffsets = [&](int(&offsets)[32], auto spotOf) {
      for (int lane = 0; lane < 32; ++lane) {
        const TileSpot spot = spotOf(lane);
        offsets[lane] = swizzledOffset(headDim, spot.row, spot.col);
      }
    };
    for (int kk = 0; kk < headDim / 16; ++kk) {
      Fragment a[kRowTiles];
      for (int mt = 0; mt < kRowTiles; ++mt) {
        int offsets[32];
        spotOffsets(offsets, [&](int lane) { return queryFragmentSpot(warp, lane, mt, kk); });
        loadMatrix(q, offsets, false, a[mt]);
      }
      for (int pair = 0; pair < kKeyTiles / 2; ++pair) {
        int offsets[32];
        spotOffsets(offsets, [&](int lane) { return keyFragmentSpot(warp, lane, pair, kk); });
        Fragment b;
        loadMatrix(k, offsets, false, b);
        Pair b0[32], b1[32], b2[32], b3[32];
        for (int lane = 0; lane < 32; ++lane)
          b0[lane] = b[lane][0], b1[lane] = b[lane][1], b2[lane] = b[lane][2], b3[lane] = b[lane][3];
        for (int mt = 0; mt < kRowTiles; ++mt) {
          mma(s[mt][2 * pair], a[mt], b0, b1);
          mma(s[mt][2 * pair + 1], a[mt], b2, b3);
        }
      }
    }
    for (int mt = 0; mt < kRowTiles; ++mt)
      for (int nt = 0; nt < kKeyTiles; ++nt)
        for (int lane = 0; lane < 32; ++lane)
          for (int e = 0; e < 4; ++e) {
            const int row = fragmentRow(warp, lane, mt, e), key = fragmentKey(warp, lane, nt, e);
            float direct = 0;
            for (int d = 0; d < headDim; ++d) direct += q.at(row, d) * k.at(key, d);
            CHECK(s[mt][nt][lane][e] == direct, "S D%d warp %d lane %d mt %d nt %d e %d: %g != %g", headDim, warp, lane,
                  mt, nt, e, s[mt][nt][lane][e], direct);
            ++covered[row * 64 + key];
            rowOf[(warp * 32 + lane) * kRowsPerLane + 2 * mt + e / 2] = row;
          }

    // O = P V with P = S: A fragments packed from the accumulators as the kernel packs them
    const int dimTiles = headDim / 8;
    std::vector<float> o(size_t(kRowTiles) * dimTiles * 32 * 4, 0.f);
    auto oTile = [&](int mt, int t) { return reinterpret_cast<float(*)[4]>(&o[((mt * dimTiles) + t) * 32 * 4]); };
    for (int kk = 0; kk < kKeyTiles / 2; ++kk) {
      Pair p[kRowTiles][32][4];
      for (int mt = 0; mt < kRowTiles; ++mt)
        for (int lane = 0; lane < 32; ++lane) {
          const float* lo = s[mt][2 * kk][lane];
          const float* hi = s[mt][2 * kk + 1][lane];
          p[mt][lane][0] = {lo[0], lo[1]}, p[mt][lane][1] = {lo[2], lo[3]};
          p[mt][lane][2] = {hi[0], hi[1]}, p[mt][lane][3] = {hi[2], hi[3]};
        }
      for (int pair = 0; pair < dimTiles / 2; ++pair) {
        int offsets[32];
        spotOffsets(offsets, [&](int lane) { return valueFragmentSpot(warp, lane, kk, pair); });
        Fragment b;
        loadMatrix(v, offsets, true, b);
        Pair b0[32], b1[32], b2[32], b3[32];
        for (int lane = 0; lane < 32; ++lane)
          b0[lane] = b[lane][0], b1[lane] = b[lane][1], b2[lane] = b[lane][2], b3[lane] = b[lane][3];
        for (int mt = 0; mt < kRowTiles; ++mt) {
          mma(*reinterpret_cast<float(*)[32][4]>(oTile(mt, 2 * pair)), p[mt], b0, b1);
          mma(*reinterpret_cast<float(*)[32][4]>(oTile(mt, 2 * pair + 1)), p[mt], b2, b3);
        }
      }
    }
    for (int mt = 0; mt < kRowTiles; ++mt)
      for (int t = 0; t < dimTiles; ++t)
        for (int lane = 0; lane < 32; ++lane)
          for (int e = 0; e < 4; ++e) {
            const int row = fragmentRow(warp, lane, mt, e), col = fragmentColumn(lane, t, e);
            float direct = 0;  // sum over this warp's keys of S[row][key] V[key][col]
            for (int key = warpFirstKey(warp); key < warpFirstKey(warp) + kWarpKeys; ++key) {
              float score = 0;
              for (int d = 0; d < headDim; ++d) score += q.at(row, d) * k.at(key, d);
              direct += score * v.at(key, col);
            }
            CHECK(oTile(mt, t)[lane][e] == direct, "O D%d warp %d lane %d mt %d t %d e %d: %g != %g", headDim, warp,
                  lane, mt, t, e, oTile(mt, t)[lane][e], direct);
          }
  }
  for (int i = 0; i < 64 * 64; ++i)
    CHECK(covered[i] == 1, "(row %d, key %d) covered %d times", i / 64, i % 64, covered[i]);
  for (int warp = 0; warp < kWarps; ++warp)
    for (int j = 0; j < 32 * kRowsPerLane; ++j)
      CHECK(rowOf[warp * 32 * kRowsPerLane + j] == rowOf[partner(warp) * 32 * kRowsPerLane + j],
            "warp %d and its partner differ at lane %d row %d", warp, j / kRowsPerLane, j % kRowsPerLane);
}

// One row's online softmax over tiles of 64 keys, each half of the keys (32 keys per tile) with its
// own state as one warp of a row half keeps it, merged as the epilogue merges; against the direct
// softmax of the same scores. valid[t] = keys of tile t that exist (the rest score -inf).
struct HalfState {
  float m = -INFINITY, l = 0;
  std::vector<double> o;
};
double mergedError(const std::vector<std::vector<float>>& scores, const std::vector<int>& valid,
                   const std::vector<std::vector<float>>& values, float scaleLog2, bool guard) {
  const int dims = int(values[0].size());
  HalfState halves[2];
  for (auto& h : halves) h.o.assign(dims, 0.0);
  const auto exp2 = [](float x) { return std::exp2(x); };
  // the kernel's formulas (rowStep, mergeWeights), or the same without the -inf guard
  auto step = [&](float m, float scoreMax) {
    if (guard) return rowStep(m, scoreMax, scaleLog2, exp2);
    const float mNew = std::max(m, scoreMax * scaleLog2);
    return RowStep{mNew, mNew, exp2(m - mNew), mNew > m};
  };
  for (size_t t = 0; t < scores.size(); ++t)
    for (int half = 0; half < 2; ++half) {
      HalfState& h = halves[half];
      float scoreMax = -INFINITY;
      std::vector<float> s(kWarpKeys);
      for (int key = 0; key < kWarpKeys; ++key) {
        const int tileKey = kWarpKeys * half + key;
        s[key] = tileKey < valid[t] ? scores[t][tileKey] : -INFINITY;
        scoreMax = std::max(scoreMax, s[key]);
      }
      const RowStep st = step(h.m, scoreMax);
      h.m = st.rowMax;
      float sum = 0, largest = 0;
      for (int key = 0; key < kWarpKeys; ++key) {
        s[key] = probability(s[key], scaleLog2, st.base, exp2);
        sum += s[key];
        largest = std::max(largest, s[key]);
      }
      // the base is the row max: P <= 1, and 1 at the key that moved it (no overflow for any scores)
      if (guard && st.moved) CHECK(std::fabs(largest - 1.f) < 1e-6f, "largest P %g after the max moved", largest);
      if (guard) CHECK(largest <= 1.f + 1e-6f, "P %g > 1", largest);
      h.l = updatedRowSum(h.l, st.alpha, sum);
      if (st.moved)  // the kernel skips the rescale when no row max moved (alpha = 1)
        for (double& x : h.o) x *= st.alpha;
      else CHECK(!guard || st.alpha == 1.f, "a row whose max did not move has alpha %g, not exactly 1", st.alpha);
      for (int key = 0; key < kWarpKeys; ++key)
        for (int d = 0; d < dims; ++d) h.o[d] += double(s[key]) * values[t * 64 + kWarpKeys * half + key][d];
    }
  MergeWeights w = mergeWeights(halves[0].m, halves[0].l, halves[1].m, halves[1].l, exp2);
  if (!guard) {
    const float m = std::max(halves[0].m, halves[1].m), w0 = exp2(halves[0].m - m), w1 = exp2(halves[1].m - m);
    const float l = w0 * halves[0].l + w1 * halves[1].l;
    w = {w0 / l, w1 / l};
  }
  // partner warps: each computes its own weights with the roles swapped; they must agree
  const MergeWeights swapped = mergeWeights(halves[1].m, halves[1].l, halves[0].m, halves[0].l, exp2);
  if (guard) CHECK(swapped.own == w.other && swapped.other == w.own, "the merge is not symmetric");
  // direct softmax over the valid keys, in double
  double top = -INFINITY;
  for (size_t t = 0; t < scores.size(); ++t)
    for (int key = 0; key < valid[t]; ++key) top = std::max(top, double(scores[t][key]));
  std::vector<double> want(dims, 0.0);
  double total = 0;
  for (size_t t = 0; t < scores.size(); ++t)
    for (int key = 0; key < valid[t]; ++key) {
      const double weight = std::exp2((scores[t][key] - top) * scaleLog2);
      total += weight;
      for (int d = 0; d < dims; ++d) want[d] += weight * values[t * 64 + key][d];
    }
  double error = 0;
  for (int d = 0; d < dims; ++d) {
    const double got = w.own * halves[0].o[d] + w.other * halves[1].o[d];
    error = std::max(error, std::isnan(got) ? INFINITY : std::fabs(got - want[d] / total));
  }
  return error;
}

void checkMerge(std::mt19937& random) {
  std::normal_distribution<float> normal(0.f, 1.f);
  const float scaleLog2 = float(1.4426950408889634 / std::sqrt(64.0));
  for (int trial = 0; trial < 40; ++trial) {
    const int tiles = 1 + trial % 7;
    std::vector<std::vector<float>> scores(tiles, std::vector<float>(64));
    std::vector<std::vector<float>> values(size_t(tiles) * 64, std::vector<float>(8));
    std::vector<int> valid(tiles, 64);
    const float spread = trial % 2 ? 30.f : 3.f;  // large spreads move the max often
    for (auto& row : scores)
      for (float& x : row) x = spread * normal(random);
    for (auto& row : values)
      for (float& x : row) x = normal(random);
    // ragged tiles: some with <= 32 keys, so the second half sees only masked keys in them
    if (trial % 3 == 1)
      for (int t = 0; t < tiles; ++t) valid[t] = 1 + int(random() % 64);
    if (trial % 3 == 2)
      for (int t = 0; t < tiles; ++t) valid[t] = 1 + int(random() % 32);  // half 1 never sees a key
    const double error = mergedError(scores, valid, values, scaleLog2, true);
    CHECK(error < 1e-5, "trial %d (%d tiles): merged online softmax off by %g", trial, tiles, error);
    if (trial % 3 == 2)  // without the -inf guard the all-masked half is NaN
      CHECK(std::isinf(mergedError(scores, valid, values, scaleLog2, false)), "trial %d: the guard is needed", trial);
  }
}

// The epilogue's exchange, replayed for all 4 warps: each lane's O fragment values and row
// statistics of its key half, the slots each warp writes for its partner and reads back, the
// merge; every output element is written once, with the merge of the two halves of its row.
void checkEpilogue(int headDim, std::mt19937& random) {
  std::normal_distribution<float> normal(0.f, 1.f);
  const int dimTiles = headDim / 8;
  // per key half: row max (log2 units), row sum and unnormalised O
  std::vector<float> rowMax[2], rowSum[2], o[2];
  for (int h = 0; h < 2; ++h) {
    rowMax[h].resize(64), rowSum[h].resize(64), o[h].resize(64 * headDim);
    for (int r = 0; r < 64; ++r) rowMax[h][r] = 4 * normal(random), rowSum[h][r] = 1 + std::fabs(normal(random));
    for (float& x : o[h]) x = normal(random);
  }
  const auto exp2 = [](float x) { return std::exp2(x); };
  std::vector<std::array<float, 4>> exchange(size_t(kWarps) * kRowTiles * (dimTiles / 2) * 32);
  for (int warp = 0; warp < kWarps; ++warp)
    for (int mt = 0; mt < kRowTiles; ++mt)
      for (int t = 0; t < dimTiles; ++t)
        for (int lane = 0; lane < 32; ++lane)
          if (!finalisesColumnTile(warp, t, dimTiles)) {
            const size_t index = size_t(exchangeSlot(warp, mt, t, lane, dimTiles));
            CHECK(index < exchange.size(), "slot %zu past the exchange buffer", index);
            if (index >= exchange.size()) return;
            std::array<float, 4>& slot = exchange[index];
            for (int e = 0; e < 4; ++e)
              slot[e] = o[keyHalf(warp)][fragmentRow(warp, lane, mt, e) * headDim + fragmentColumn(lane, t, e)];
          }
  std::vector<int> written(64 * headDim, 0);
  for (int warp = 0; warp < kWarps; ++warp)
    for (int mt = 0; mt < kRowTiles; ++mt)
      for (int t = 0; t < dimTiles; ++t)
        for (int lane = 0; lane < 32; ++lane) {
          if (!finalisesColumnTile(warp, t, dimTiles)) continue;
          const std::array<float, 4>& theirs = exchange[exchangeSlot(partner(warp), mt, t, lane, dimTiles)];
          for (int e = 0; e < 4; ++e) {
            const int row = fragmentRow(warp, lane, mt, e), col = fragmentColumn(lane, t, e);
            const int own = keyHalf(warp), other = keyHalf(partner(warp));
            // the statistics the partner lane published are those of the same row
            const MergeWeights w =
                mergeWeights(rowMax[own][row], rowSum[own][row], rowMax[other][row], rowSum[other][row], exp2);
            const float got = o[own][row * headDim + col] * w.own + theirs[e] * w.other;
            const double m = std::max(rowMax[0][row], rowMax[1][row]);
            const double w0 = std::exp2(rowMax[0][row] - m), w1 = std::exp2(rowMax[1][row] - m);
            const double want = (w0 * o[0][row * headDim + col] + w1 * o[1][row * headDim + col]) /
                                (w0 * rowSum[0][row] + w1 * rowSum[1][row]);
            CHECK(std::fabs(got - want) < 1e-5 * (1 + std::fabs(want)), "D%d (%d, %d): %g != %g", headDim, row, col,
                  got, want);
            ++written[row * headDim + col];
          }
        }
  for (int i = 0; i < 64 * headDim; ++i)
    CHECK(written[i] == 1, "D%d (%d, %d) written %d times", headDim, i / headDim, i % headDim, written[i]);
}

// The two warps of row half 0 (key halves 0 and 1) over tiles of 64 keys, lane by lane through the
// kernel's own step: S fragments (keyMasked past a ragged tile's keys), laneScoreMax reduced over
// each quad, softmaxRowTile, the warp's O rescale when any lane of the row tile moved, O += P V
// (one n8 column tile: lane c holds columns 2c, 2c + 1); then l reduced over the quad and the
// halves merged by mergeWeights, against the direct softmax.
double rowTilesError(const std::vector<std::vector<float>>& scores, const std::vector<int>& valid,
                     const std::vector<std::vector<float>>& values, float scaleLog2) {
  const auto exp2 = [](float x) { return std::exp2(x); };
  const int tiles = int(valid.size());
  struct LaneState {
    float rowMax[kRowTiles][2], rowSum[kRowTiles][2];
    double o[kRowTiles][4];
  };
  std::vector<LaneState> lanes(2 * 32);  // [keyHalf][lane]
  for (LaneState& st : lanes)
    for (int mt = 0; mt < kRowTiles; ++mt) {
      st.rowMax[mt][0] = st.rowMax[mt][1] = -INFINITY, st.rowSum[mt][0] = st.rowSum[mt][1] = 0.f;
      std::fill(st.o[mt], st.o[mt] + 4, 0.0);
    }
  for (int t = 0; t < tiles; ++t)
    for (int warp = 0; warp < 2; ++warp)
      for (int mt = 0; mt < kRowTiles; ++mt) {
        float s[32][kKeyTiles][4], laneMax[32][2], alpha[32][2];
        bool moved[32];
        for (int lane = 0; lane < 32; ++lane) {
          for (int nt = 0; nt < kKeyTiles; ++nt)
            for (int e = 0; e < 4; ++e) {
              const float score = scores[size_t(t) * 64 + size_t(fragmentRow(warp, lane, mt, e))]
                                        [size_t(fragmentKey(warp, lane, nt, e))];
              s[lane][nt][e] = valid[t] < 64 && keyMasked(warp, lane, nt, e, valid[t]) ? -INFINITY : score;
            }
          for (int half = 0; half < 2; ++half) laneMax[lane][half] = laneScoreMax(s[lane], half);
        }
        for (int lane = 0; lane < 32; ++lane) {
          int half = 0;  // softmaxRowTile asks for row half 0, then 1
          const auto quadMax = [&](float x) {
            CHECK(x == laneMax[lane][half], "lane %d half %d: the step reduces another value", lane, half);
            float m = -INFINITY;
            for (int c = 0; c < 4; ++c) m = std::max(m, laneMax[lane / 4 * 4 + c][half]);
            ++half;
            return m;
          };
          LaneState& st = lanes[warp * 32 + lane];
          moved[lane] = softmaxRowTile(s[lane], st.rowMax[mt], st.rowSum[mt], alpha[lane], scaleLog2, quadMax, exp2);
          // the base is the row max over every key seen: no P above 1
          for (int nt = 0; nt < kKeyTiles; ++nt)
            for (int e = 0; e < 4; ++e) CHECK(s[lane][nt][e] <= 1.f + 1e-6f, "lane %d: P %g > 1", lane, s[lane][nt][e]);
        }
        const bool rescale = std::any_of(moved, moved + 32, [](bool m) { return m; });  // __any_sync
        for (int lane = 0; lane < 32; ++lane) {
          LaneState& st = lanes[warp * 32 + lane];
          for (int e = 0; e < 4; ++e) {
            if (rescale) st.o[mt][e] *= alpha[lane][e / 2];
            const int row = fragmentRow(warp, lane, mt, e), col = fragmentColumn(lane, 0, e);
            // O += P V over this warp's keys: the row's P is spread over the quad's four lanes
            for (int other = lane / 4 * 4; other < lane / 4 * 4 + 4; ++other)
              for (int nt = 0; nt < kKeyTiles; ++nt)
                for (int f = 2 * (e / 2); f < 2 * (e / 2) + 2; ++f) {
                  CHECK(fragmentRow(warp, other, mt, f) == row, "lane %d element %d: not row %d", other, f, row);
                  st.o[mt][e] +=
                      double(s[other][nt][f]) * values[size_t(t) * 64 + size_t(fragmentKey(warp, other, nt, f))][col];
                }
          }
        }
      }
  double error = 0;
  for (int lane = 0; lane < 32; ++lane)
    for (int mt = 0; mt < kRowTiles; ++mt)
      for (int e = 0; e < 4; ++e) {
        const int row = fragmentRow(0, lane, mt, e), col = fragmentColumn(lane, 0, e);
        float sums[2];
        for (int warp = 0; warp < 2; ++warp) {  // l: the quad's four shares
          sums[warp] = 0;
          for (int c = 0; c < 4; ++c) sums[warp] += lanes[warp * 32 + lane / 4 * 4 + c].rowSum[mt][e / 2];
        }
        const LaneState &own = lanes[lane], &other = lanes[32 + lane];
        const MergeWeights w = mergeWeights(own.rowMax[mt][e / 2], sums[0], other.rowMax[mt][e / 2], sums[1], exp2);
        const double got = w.own * own.o[mt][e] + w.other * other.o[mt][e];
        double top = -INFINITY, total = 0, want = 0;
        for (int t = 0; t < tiles; ++t)
          for (int key = 0; key < valid[t]; ++key) top = std::max(top, double(scores[size_t(t) * 64 + row][key]));
        for (int t = 0; t < tiles; ++t)
          for (int key = 0; key < valid[t]; ++key) {
            const double weight = std::exp2((scores[size_t(t) * 64 + row][key] - top) * scaleLog2);
            total += weight;
            want += weight * values[size_t(t) * 64 + key][col];
          }
        error = std::max(error, std::isnan(got) ? INFINITY : std::fabs(got - want / total));
      }
  return error;
}

void checkRowTiles(std::mt19937& random) {
  std::normal_distribution<float> normal(0.f, 1.f);
  const float scaleLog2 = float(1.4426950408889634 / std::sqrt(64.0));
  for (int trial = 0; trial < 24; ++trial) {
    const int tiles = 1 + trial % 6;
    std::vector<std::vector<float>> scores(size_t(tiles) * 64, std::vector<float>(64));  // [tile, row][key]
    std::vector<std::vector<float>> values(size_t(tiles) * 64, std::vector<float>(8));   // [tile, key][col]
    std::vector<int> valid(tiles, 64);
    const float spread = trial % 2 ? 30.f : 3.f;
    for (auto& row : scores)
      for (float& x : row) x = spread * normal(random);
    for (auto& row : values)
      for (float& x : row) x = normal(random);
    if (trial % 3 == 1)
      for (int t = 0; t < tiles; ++t) valid[t] = 1 + int(random() % 64);
    if (trial % 3 == 2)
      for (int t = 0; t < tiles; ++t) valid[t] = 1 + int(random() % 32);
    const double error = rowTilesError(scores, valid, values, scaleLog2);
    CHECK(error < 1e-5, "trial %d (%d tiles): the lanes' online softmax off by %g", trial, tiles, error);
  }
}

// The kernel's cp.async protocol for one CTA, each warp's program a sequence of steps (prologue;
// per tile: wait_group, barrier, issue + commit, read; then wait_group 0, barrier, epilogue) and each
// committed group landing at any time, in a random order. A warp's share of a tile is its threads'
// chunks; a tile is complete when every warp's share landed. A warp reads its stage from the read
// step until it arrives at the next barrier.
struct PipelineModel {
  int stages, count;
  enum Phase { kPrologue, kWait, kBarrier, kIssue, kRead, kFinalWait, kFinalBarrier, kEpilogue, kDone };
  struct Write {
    int slot, tile;  // slot stages = Q
  };
  struct Group {
    std::vector<Write> writes;
    bool landed = false;
  };
  struct Warp {
    Phase phase = kPrologue;
    int n = 0;
    bool arrived = false;
    int reading = -1;  // stage read since the read step
    std::vector<Group> groups;
  };
  struct Slot {
    int tile = -1;
    int landedShares = 0;
  };
  std::vector<Warp> warps{size_t(kWarps)};
  std::vector<Slot> slots;  // stages, then Q
  std::string error;

  PipelineModel(int stageCount, int tileCount) : stages(stageCount), count(tileCount), slots(stageCount + 1) {}

  void fail(const char* what, int warp, int n, int tile) {
    if (error.empty())
      error = std::string(what) + " (warp " + std::to_string(warp) + ", iteration " + std::to_string(n) + ", tile " +
              std::to_string(tile) + ")";
  }
  bool readBy(int slot) const {
    for (const Warp& w : warps)
      if (w.reading == slot) return true;
    return false;
  }
  void issue(int warp, Group& group, int slot, int tile) {
    if (readBy(slot)) fail("copy issued into a stage a warp reads", warp, warps[warp].n, tile);
    if (slots[slot].tile != tile) slots[slot] = {tile, 0};
    group.writes.push_back({slot, tile});
  }
  void land(Group& group) {
    for (const Write& w : group.writes) {
      if (readBy(w.slot)) fail("copy lands in a stage a warp reads", -1, -1, w.tile);
      if (slots[w.slot].tile == w.tile) ++slots[w.slot].landedShares;
    }
    group.landed = true;
  }
  int pendingGroups(const Warp& w) const {
    int pending = 0;
    for (const Group& g : w.groups) pending += g.landed ? 0 : 1;
    return pending;
  }
  // wait_group N: every group but the N most recent has landed
  bool waitDone(const Warp& w, int allowed) const {
    for (size_t g = 0; g + size_t(allowed) < w.groups.size(); ++g)
      if (!w.groups[g].landed) return false;
    return true;
  }
  bool complete(int slot, int tile) const { return slots[slot].tile == tile && slots[slot].landedShares == kWarps; }

  // one step of warp w if it can take one now
  bool step(int index) {
    Warp& w = warps[index];
    const auto allArrived = [&](Phase phase) {
      for (const Warp& x : warps)
        if (x.phase != phase || !x.arrived) return false;
      return true;
    };
    switch (w.phase) {
      case kPrologue: {
        if (count == 0) return w.phase = kDone, true;  // the kernel returns before any copy
        w.groups.emplace_back();
        issue(index, w.groups.back(), stages, -2);  // Q
        issue(index, w.groups.back(), tileStage(0, stages), 0);
        for (int n = 1; n < prologueTiles(stages); ++n) {
          w.groups.emplace_back();
          if (n < count) issue(index, w.groups.back(), tileStage(n, stages), n);
        }
        w.phase = kWait;
        return true;
      }
      case kWait:
        if (!waitDone(w, pendingCopyGroups(stages))) return false;
        w.phase = kBarrier;
        return true;
      case kBarrier:
      case kFinalBarrier: {
        if (!w.arrived) {
          w.arrived = true, w.reading = -1;  // done with the tile it read
          return true;
        }
        if (!allArrived(w.phase)) return false;
        const Phase next = w.phase == kBarrier ? kIssue : kEpilogue;
        for (Warp& x : warps) x.arrived = false, x.phase = next;
        return true;
      }
      case kIssue: {
        w.groups.emplace_back();
        const int tile = tileIssuedAt(w.n, stages);
        if (tile < count) issue(index, w.groups.back(), tileStage(tile, stages), tile);
        w.phase = kRead;
        return true;
      }
      case kRead: {
        const int stage = tileStage(w.n, stages);
        if (!complete(stage, w.n)) fail("tile read before it is complete", index, w.n, w.n);
        if (!complete(stages, -2)) fail("Q read before it is complete", index, w.n, -2);
        w.reading = stage;
        w.phase = ++w.n < count ? kWait : kFinalWait;
        return true;
      }
      case kFinalWait:
        if (!waitDone(w, 0)) return false;
        w.phase = kFinalBarrier;
        return true;
      case kEpilogue:  // the merge buffers overwrite every stage
        for (const Warp& x : warps)
          if (pendingGroups(x) != 0) fail("a copy is in flight when the epilogue writes the stages", index, w.n, -1);
        w.phase = kDone;
        return true;
      case kDone: return false;
    }
    return false;
  }

  // runs to the end under a random schedule; the error, or "" when every check held
  std::string run(std::mt19937& random) {
    for (;;) {
      std::vector<int> choices;  // warps 0..3, then 4 + a pending group (warp * 1024 + group)
      bool done = true;
      for (int w = 0; w < kWarps; ++w) {
        done = done && warps[w].phase == kDone;
        if (warps[w].phase != kDone) choices.push_back(w);
        for (size_t g = 0; g < warps[w].groups.size(); ++g)
          if (!warps[w].groups[g].landed) choices.push_back(kWarps + w * 1024 + int(g));
      }
      if (done || !error.empty()) return error;
      std::shuffle(choices.begin(), choices.end(), random);
      bool moved = false;
      for (int c : choices) {
        if (c >= kWarps) {
          land(warps[(c - kWarps) / 1024].groups[size_t((c - kWarps) % 1024)]);
          moved = true;
        } else {
          moved = step(c);
        }
        if (moved) break;
      }
      if (!moved) {
        std::string state = "deadlock:";
        for (const Warp& w : warps) state += " " + std::to_string(int(w.phase)) + "/" + std::to_string(w.arrived);
        return state;
      }
    }
  }
};

void checkPipeline(std::mt19937& random) {
  for (int stages = 2; stages <= 3; ++stages)
    for (int count : {0, 1, 2, 3, 4, 5, 6, 300}) {
      const int runs = count == 300 ? 4 : 200;
      for (int r = 0; r < runs; ++r) {
        PipelineModel model(stages, count);
        const std::string error = model.run(random);
        CHECK(error.empty(), "%d stages, %d tiles, schedule %d: %s", stages, count, r, error.c_str());
        if (!error.empty()) return;
      }
    }
}

// A row no key reached (both halves m = -inf, l = 0) has weights 0, not NaN: its output is zero.
void checkEmptyMerge() {
  const auto exp2 = [](float x) { return std::exp2(x); };
  const MergeWeights w = mergeWeights(-INFINITY, 0.f, -INFINITY, 0.f, exp2);
  CHECK(w.own == 0.f && w.other == 0.f, "empty row: weights %g, %g", w.own, w.other);
  // a masked tile on an empty row: nothing moved, alpha exactly 1 (l and O stay 0)
  const RowStep st = rowStep(-INFINITY, -INFINITY, 0.18f, exp2);
  CHECK(st.alpha == 1.f && !st.moved && st.base == 0.f, "masked tile on an empty row: alpha %g", st.alpha);
  // the first real key of a row: m moves from -inf, so the (zero) l and O are scaled by alpha 0
  const RowStep first = rowStep(-INFINITY, 2.f, 0.18f, exp2);
  CHECK(first.alpha == 0.f && first.moved, "first key of a row: alpha %g", first.alpha);
}

void checkBlockSpan() {
  for (int t = 1; t <= 3; ++t)
    for (int ht = 1; ht <= 26; ht += 3)
      for (int wt = 1; wt <= 35; wt += 2) {
        TileLayout layout;
        layout.t = t, layout.ht = ht, layout.wt = wt;
        for (int64_t b = 0; b < layout.blocks(0); ++b) {
          const BlockSpan span = blockSpan(layout, int32_t(b));
          CHECK(span.start == layout.blockStart(b) && span.length == layout.blockLength(b), "grid %dx%dx%d block %lld",
                t, ht, wt, static_cast<long long>(b));
        }
      }
  const TileLayout none;
  CHECK(blockSpan(none, 5).start == 320 && blockSpan(none, 5).length == 64, "no grid: blocks of 64");
}

}  // namespace

int main() {
  std::mt19937 random(7);
  checkSwizzle(64);
  checkSwizzle(128);
  checkOffsets(64);
  checkOffsets(128);
  checkProducts(64, random);
  checkProducts(128, random);
  checkMerge(random);
  checkRowTiles(random);
  checkEmptyMerge();
  checkEpilogue(64, random);
  checkEpilogue(128, random);
  checkBlockSpan();
  checkPipeline(random);
  return finish("fast2_layout");
}
