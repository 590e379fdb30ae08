// The Hopper kernel's GPU ladder: each rung tests one layer of csrc/cuda/hopper on exact data, so
// one short GPU session says which layer is wrong. One rung per process (ladder.sh runs them):
//
//   hopper-ladder env        device, compute capability 9.0, SM count (exit 3 on any other device)
//   hopper-ladder wgmma-plain  R1a: one wgmma m64n64k16, K-major A and B in shared memory without
//                            swizzle, small integers (exact); a 64 x 64 map of wrong cells
//   hopper-ladder wgmma      R1b: the same with the kernel's 128B swizzle
//   hopper-ladder advance    R2a: S = A B^T over K = 64 and 128 (descriptor advance inside the
//                            128-byte row and across tile halves), exact
//   hopper-ladder pv         R2b: O = P V with P from registers and V MN-major (transposed B), N = 64
//                            and 128, exact
//   hopper-ladder tma        R3: TMA 64 x 64 boxes with 128B swizzle against layout.h's tile layout
//   hopper-ladder tma-wgmma  R4: TMA + wgmma, S = Q K^T on random bf16 against a host fp32 product
//   hopper-ladder pipeline   R5: producer thread + consumer warpgroup over a 3-slot ring, lists of
//                            0, 1, 3, 4 and 300 blocks; per-tile checksums
// Built with NABLA_HOPPER_SPIN_LIMIT_NS, so a barrier wait that lasts longer traps instead of hanging.
// Exit status 0 = rung passed.
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/cuda/hopper/hopper_attention.h"
#include "../../csrc/cuda/hopper/layout.h"
#include "../../csrc/cuda/hopper/ptx_sm90.cuh"

using namespace nabla::cuda::hopper;

#define CHECK_CUDA(call)                                                                                \
  do {                                                                                                  \
    const cudaError_t e = (call);                                                                       \
    if (e != cudaSuccess) {                                                                             \
      std::fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e)); \
      std::exit(2);                                                                                     \
    }                                                                                                   \
  } while (0)

namespace {

// ---------------------------------------------------------------- device side
constexpr int kMaxTileBytes = 64 * 128 * 2;

// Thread t of the warpgroup writes its accumulator fragment of a 64 x N D to d (row-major).
// (layout.h accumulatorCell: the mapping the kernel's epilogue uses, checked here on hardware)
template <int N>
__device__ void storeAccumulator(const float (&acc)[N / 2], float* d) {
  for (int i = 0; i < N / 2; ++i) {
    const Cell cell = accumulatorCell(threadIdx.x % 128, i);
    d[cell.row * N + cell.col] = acc[i];
  }
}

// S (64 x 64) = A B^T over kSteps k-steps; a and b are tiles already in the swizzled layout. kSteps
// is a template parameter so the loop unrolls as the kernel's does: a runtime trip count makes
// ptxas insert extra warpgroup.arrive (C7519), i.e. run other code than the kernel.
template <int kSteps>
__global__ void sharedSharedKernel(const uint4* a, const uint4* b, int tileBytes, float* d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(1024) unsigned char tiles[2 * kMaxTileBytes];
  for (int i = threadIdx.x; i < tileBytes / 16; i += blockDim.x) {
    reinterpret_cast<uint4*>(tiles)[i] = a[i];
    reinterpret_cast<uint4*>(tiles + kMaxTileBytes)[i] = b[i];
  }
  ptx::fenceProxyAsync();  // generic writes above, async-proxy (wgmma) reads below
  __syncthreads();
  float acc[32];
  for (int i = 0; i < 32; ++i) acc[i] = 0.f;
  const uint32_t aAddress = ptx::sharedAddress(tiles), bAddress = ptx::sharedAddress(tiles + kMaxTileBytes);
  ptx::fenceRegisters(acc);
  ptx::wgmmaFence();
#pragma unroll
  for (int kk = 0; kk < kSteps; ++kk)
    ptx::mmaSharedShared64<__nv_bfloat16>(acc, kMajorDescriptor(aAddress, kk), kMajorDescriptor(bAddress, kk), 1u);
  ptx::wgmmaCommit();
  ptx::wgmmaWait<0>();
  ptx::fenceRegisters(acc);
  storeAccumulator<64>(acc, d);
#endif
}

// The first rung: one wgmma m64n64k16 whose A (64 x 16) and B (64 x 16, i.e. B^T) sit in shared
// memory WITHOUT swizzle, as 8 x 16-byte core matrices (8 rows x 8 elements, 128 contiguous bytes):
// element (row, k) at (row / 8) * sbo + (k / 8) * lbo + (row % 8) * 16 + (k % 8) * 2. Passing means
// the descriptor's address, LBO and SBO fields and the accumulator layout are right before any
// swizzle is involved; the swizzled rung after it then tests the swizzle alone.
__global__ void unswizzledKernel(const uint4* a, const uint4* b, uint32_t lbo, uint32_t sbo, float* d) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kBytes = 64 * 16 * 2;
  __shared__ __align__(1024) unsigned char tiles[2 * kBytes];
  for (int i = threadIdx.x; i < kBytes / 16; i += blockDim.x) {
    reinterpret_cast<uint4*>(tiles)[i] = a[i];
    reinterpret_cast<uint4*>(tiles + kBytes)[i] = b[i];
  }
  ptx::fenceProxyAsync();
  __syncthreads();
  float acc[32];
  for (int i = 0; i < 32; ++i) acc[i] = 0.f;
  const uint32_t aAddress = ptx::sharedAddress(tiles), bAddress = ptx::sharedAddress(tiles + kBytes);
  ptx::fenceRegisters(acc);
  ptx::wgmmaFence();
  ptx::mmaSharedShared64<__nv_bfloat16>(acc, matrixDescriptor(aAddress, lbo, sbo, Swizzle::None),
                                        matrixDescriptor(bAddress, lbo, sbo, Swizzle::None), 0u);
  ptx::wgmmaCommit();
  ptx::wgmmaWait<0>();
  ptx::fenceRegisters(acc);
  storeAccumulator<64>(acc, d);
#endif
}

// O (64 x N) = P V, P (64 x 64 row-major bf16) from registers, V a swizzled 64 x N tile.
template <int N>
__global__ void registerSharedKernel(const __nv_bfloat16* p, const uint4* v, float* o) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(1024) unsigned char tile[kMaxTileBytes];
  for (int i = threadIdx.x; i < 64 * N * 2 / 16; i += blockDim.x) reinterpret_cast<uint4*>(tile)[i] = v[i];
  ptx::fenceProxyAsync();
  __syncthreads();
  const uint32_t t = threadIdx.x % 128;
  auto element = [&](uint32_t kk, uint32_t r, uint32_t e) {  // layout.h operandACell, key step kk
    const Cell cell = operandACell(t, r, e);
    return uint32_t(reinterpret_cast<const uint16_t*>(p)[cell.row * 64 + 16 * kk + cell.col]);
  };
  float acc[N / 2];
  for (int i = 0; i < N / 2; ++i) acc[i] = 0.f;
  // every A operand in registers before the wgmma sequence, as in the kernel (registers written
  // between the fence and a wgmma that reads them make ptxas inject waits: C7519)
  uint32_t a[4][4];
#pragma unroll
  for (int kk = 0; kk < 4; ++kk)
#pragma unroll
    for (uint32_t r = 0; r < 4; ++r) a[kk][r] = element(kk, r, 0) | (element(kk, r, 1) << 16);
  const uint32_t vAddress = ptx::sharedAddress(tile);
  ptx::fenceRegisters(acc);
  ptx::wgmmaFence();
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    if constexpr (N == 128) ptx::mmaRegisterShared128<__nv_bfloat16>(acc, a[kk], mnMajorDescriptor(vAddress, kk), 1u);
    else ptx::mmaRegisterShared64<__nv_bfloat16>(acc, a[kk], mnMajorDescriptor(vAddress, kk), 1u);
  }
  ptx::wgmmaCommit();
  ptx::wgmmaWait<0>();
  ptx::fenceRegisters(acc);
  storeAccumulator<N>(acc, o);
#endif
}

// TMA: the tile at row `row0` (all halves) into shared memory; its raw bytes out.
__global__ void tmaKernel(const __grid_constant__ CUtensorMap map, int row0, int halves, uint4* out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  __shared__ __align__(1024) unsigned char tile[kMaxTileBytes];
  __shared__ uint64_t full;
  if (threadIdx.x == 0) {
    ptx::barrierInit(&full, 1);
    ptx::barrierInitFence();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ptx::arriveExpectBytes(&full, uint32_t(halves * kHalfBytes));
    for (int h = 0; h < halves; ++h) ptx::loadTile2d(tile + h * kHalfBytes, &map, h * 64, row0, &full);
  }
  ptx::wait(&full, 0);
  for (int i = threadIdx.x; i < halves * kHalfBytes / 16; i += blockDim.x) out[i] = reinterpret_cast<uint4*>(tile)[i];
#endif
}

// TMA + wgmma: S = Q[q0..q0+63] K[k0..k0+63]^T, head dim D.
template <int D>
__global__ void tmaWgmmaKernel(const __grid_constant__ CUtensorMap qMap, const __grid_constant__ CUtensorMap kMap,
                               int q0, int k0, float* s) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char raw[];
  unsigned char* tiles = raw + ((1024 - (ptx::sharedAddress(raw) & 1023u)) & 1023u);
  __shared__ uint64_t full;
  constexpr int kBytes = 64 * D * 2;
  if (threadIdx.x == 0) {
    ptx::barrierInit(&full, 1);
    ptx::barrierInitFence();
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    ptx::arriveExpectBytes(&full, 2 * kBytes);
    for (int h = 0; h < D / 64; ++h) {
      ptx::loadTile2d(tiles + h * kHalfBytes, &qMap, h * 64, q0, &full);
      ptx::loadTile2d(tiles + kBytes + h * kHalfBytes, &kMap, h * 64, k0, &full);
    }
  }
  ptx::wait(&full, 0);
  float acc[32];
  const uint32_t qAddress = ptx::sharedAddress(tiles), kAddress = ptx::sharedAddress(tiles + kBytes);
  ptx::fenceRegisters(acc);
  ptx::wgmmaFence();
  for (int kk = 0; kk < D / 16; ++kk)
    ptx::mmaSharedShared64<__nv_bfloat16>(acc, kMajorDescriptor(qAddress, kk), kMajorDescriptor(kAddress, kk),
                                          kk > 0 ? 1u : 0u);
  ptx::wgmmaCommit();
  ptx::wgmmaWait<0>();
  ptx::fenceRegisters(acc);
  storeAccumulator<64>(acc, s);
#endif
}

// The ring alone: thread 128 (producer) TMA-loads block kept[row][n] of K (head dim 128) for every
// row and n into slot n % 3; the consumer warpgroup sums each tile's 32-bit words (a sum that the
// swizzle does not change) into sums[tile], then releases the slot.
constexpr int kRingStages = 3;
__global__ void pipelineKernel(const __grid_constant__ CUtensorMap kMap, const int32_t* counts, const int32_t* kept,
                               int rows, int maxCount, unsigned long long* sums) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ unsigned char raw[];
  unsigned char* ring = raw + ((1024 - (ptx::sharedAddress(raw) & 1023u)) & 1023u);
  constexpr int kBytes = 64 * 128 * 2;
  __shared__ uint64_t full[kRingStages], empty[kRingStages];
  if (threadIdx.x == 0) {
    for (int s = 0; s < kRingStages; ++s) {
      ptx::barrierInit(&full[s], 1);
      ptx::barrierInit(&empty[s], 128);
    }
    ptx::barrierInitFence();
  }
  __syncthreads();
  PipelineState state;
  if (threadIdx.x >= 128) {
    if (threadIdx.x != 128) return;
    for (int row = 0; row < rows; ++row)
      for (int n = 0; n < counts[row]; ++n) {
        ptx::wait(&empty[state.stage], state.emptyParity());
        ptx::arriveExpectBytes(&full[state.stage], kBytes);
        for (int h = 0; h < 2; ++h)
          ptx::loadTile2d(ring + state.stage * kBytes + h * kHalfBytes, &kMap, h * 64, kept[row * maxCount + n] * 64,
                          &full[state.stage]);
        state.advance(kRingStages);
      }
    return;
  }
  int tile = 0;
  for (int row = 0; row < rows; ++row)
    for (int n = 0; n < counts[row]; ++n, ++tile) {
      ptx::wait(&full[state.stage], state.fullParity());
      const uint32_t* words = reinterpret_cast<const uint32_t*>(ring + state.stage * kBytes);
      unsigned long long sum = 0;
      for (int i = threadIdx.x; i < kBytes / 4; i += 128) sum += words[i];
      atomicAdd(&sums[tile], sum);
      ptx::fenceProxyAsync();
      ptx::arrive(&empty[state.stage]);
      state.advance(kRingStages);
    }
#endif
}

// ---------------------------------------------------------------- host side
uint16_t bf16Bits(float x) {
  const __nv_bfloat16 b = __float2bfloat16_rn(x);
  uint16_t bits;
  std::memcpy(&bits, &b, 2);
  return bits;
}
float fromBf16Bits(uint16_t bits) {
  uint32_t w = uint32_t(bits) << 16;
  float f;
  std::memcpy(&f, &w, 4);
  return f;
}

// rows x cols (row-major values) -> the swizzled tile layout (cols = head dim, 64 rows)
std::vector<uint16_t> toTile(const std::vector<float>& values, int cols) {
  std::vector<uint16_t> tile(size_t(64) * cols);
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < cols; ++c) tile[tileElementOffset(r, c) / 2] = bf16Bits(values[size_t(r) * cols + c]);
  return tile;
}

template <typename T>
T* upload(const std::vector<T>& host) {
  T* device = nullptr;
  CHECK_CUDA(cudaMalloc(&device, host.size() * sizeof(T)));
  CHECK_CUDA(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return device;
}
template <typename T>
std::vector<T> download(const T* device, size_t count) {
  std::vector<T> host(count);
  CHECK_CUDA(cudaDeviceSynchronize());
  CHECK_CUDA(cudaMemcpy(host.data(), device, count * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

// Compares a rows x cols result; prints a map of wrong cells ('X') when any is wrong.
bool compare(const char* what, const std::vector<float>& got, const std::vector<float>& want, int rows, int cols,
             double tolerance) {
  int wrong = 0;
  double worst = 0;
  std::string map;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const double g = got[size_t(r) * cols + c], w = want[size_t(r) * cols + c];
      const double error = std::fabs(g - w) / std::max(1.0, std::fabs(w));
      const bool bad = !(error <= tolerance);
      worst = std::max(worst, std::isnan(error) ? INFINITY : error);
      wrong += bad;
      map += bad ? 'X' : '.';
    }
    map += '\n';
  }
  std::printf("%s: %d of %d cells wrong (worst relative error %.3g)\n", what, wrong, rows * cols, worst);
  if (wrong > 0) std::printf("map (rows down, columns across; X = wrong):\n%s", map.c_str());
  return wrong == 0;
}

std::vector<float> smallIntegers(size_t count, std::mt19937& random) {
  std::vector<float> values(count);
  for (auto& v : values) v = float(int(random() % 5) - 2);  // -2..2: every product sum is exact
  return values;
}

template <int kSteps>
bool rungWgmma(int headDim) {
  std::mt19937 random(kSteps * 7 + headDim);
  const std::vector<float> a = smallIntegers(64 * headDim, random), b = smallIntegers(64 * headDim, random);
  uint4* aDevice = reinterpret_cast<uint4*>(upload(toTile(a, headDim)));
  uint4* bDevice = reinterpret_cast<uint4*>(upload(toTile(b, headDim)));
  float* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, 64 * 64 * sizeof(float)));
  sharedSharedKernel<kSteps><<<1, 128>>>(aDevice, bDevice, 64 * headDim * 2, d);
  CHECK_CUDA(cudaGetLastError());
  const std::vector<float> got = download(d, 64 * 64);
  std::vector<float> want(64 * 64, 0.f);
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < 64; ++n)
      for (int k = 0; k < 16 * kSteps; ++k) want[m * 64 + n] += a[m * headDim + k] * b[n * headDim + k];
  const std::string what =
      "S = A B^T, head dim " + std::to_string(headDim) + ", " + std::to_string(kSteps) + " k-steps";
  return compare(what.c_str(), got, want, 64, 64, 0.0);
}

// 64 x 16 values (row-major) -> the unswizzled core-matrix layout of unswizzledKernel
std::vector<uint16_t> toCoreMatrices(const std::vector<float>& values, uint32_t lbo, uint32_t sbo) {
  std::vector<uint16_t> tile(64 * 16);
  for (uint32_t r = 0; r < 64; ++r)
    for (uint32_t k = 0; k < 16; ++k)
      tile[((r / 8) * sbo + (k / 8) * lbo + (r % 8) * 16 + (k % 8) * 2) / 2] = bf16Bits(values[r * 16 + k]);
  return tile;
}

// One wgmma without swizzle, LBO = 128 (the next 8 elements of K) and SBO = 256 (the next 8 rows),
// the PTX ISA's K-major no-swizzle reading. On failure it retries with the fields swapped and says
// whether that reading matches, so a field mix-up is told from a layout or accumulator bug.
bool rungWgmmaUnswizzled() {
  std::mt19937 random(3);
  const std::vector<float> a = smallIntegers(64 * 16, random), b = smallIntegers(64 * 16, random);
  std::vector<float> want(64 * 64, 0.f);
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < 64; ++n)
      for (int k = 0; k < 16; ++k) want[m * 64 + n] += a[m * 16 + k] * b[n * 16 + k];
  float* d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, 64 * 64 * sizeof(float)));
  auto attempt = [&](uint32_t lbo, uint32_t sbo, const char* what) {
    uint4* aDevice = reinterpret_cast<uint4*>(upload(toCoreMatrices(a, lbo, sbo)));
    uint4* bDevice = reinterpret_cast<uint4*>(upload(toCoreMatrices(b, lbo, sbo)));
    CHECK_CUDA(cudaMemset(d, 0xff, 64 * 64 * sizeof(float)));
    unswizzledKernel<<<1, 128>>>(aDevice, bDevice, lbo, sbo, d);
    CHECK_CUDA(cudaGetLastError());
    return compare(what, download(d, 64 * 64), want, 64, 64, 0.0);
  };
  // the layout is the same bytes either way; only which field holds which stride differs
  if (attempt(128, 256, "S = A B^T, no swizzle, LBO 128 (K) SBO 256 (rows)")) return true;
  if (attempt(256, 128, "S = A B^T, no swizzle, fields swapped: LBO 256 (rows) SBO 128 (K)"))
    std::printf("the swapped reading of LBO/SBO matches: fix matrixDescriptor's users (layout.h), not the layout\n");
  return false;
}

template <int N>
bool rungPv() {
  std::mt19937 random(N);
  const std::vector<float> p = smallIntegers(64 * 64, random), v = smallIntegers(64 * N, random);
  std::vector<uint16_t> pBits(p.size());
  for (size_t i = 0; i < p.size(); ++i) pBits[i] = bf16Bits(p[i]);
  __nv_bfloat16* pDevice = reinterpret_cast<__nv_bfloat16*>(upload(pBits));
  uint4* vDevice = reinterpret_cast<uint4*>(upload(toTile(v, N)));
  float* o = nullptr;
  CHECK_CUDA(cudaMalloc(&o, 64 * N * sizeof(float)));
  registerSharedKernel<N><<<1, 128>>>(pDevice, vDevice, o);
  CHECK_CUDA(cudaGetLastError());
  const std::vector<float> got = download(o, 64 * N);
  std::vector<float> want(64 * N, 0.f);
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < N; ++n)
      for (int key = 0; key < 64; ++key) want[m * N + n] += p[m * 64 + key] * v[key * N + n];
  const std::string what = "O = P V (P from registers, V transposed), N = " + std::to_string(N);
  return compare(what.c_str(), got, want, 64, N, 0.0);
}

CUtensorMap tileMap(const void* base, uint64_t rows, uint32_t headDim) {
  CUtensorMap map;
  const auto status = encodeRowTileMap(&map, base, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, rows, headDim);
  if (!status.ok()) {
    std::fprintf(stderr, "tensor map: %s\n", status.message.c_str());
    std::exit(2);
  }
  return map;
}

bool rungTma(int headDim) {
  const int rows = 256, row0 = 128;
  std::vector<uint16_t> global(size_t(rows) * headDim);
  for (size_t i = 0; i < global.size(); ++i) global[i] = uint16_t(i * 2654435761u >> 7);  // distinct-ish bits
  uint16_t* device = upload(global);
  uint4* out = nullptr;
  CHECK_CUDA(cudaMalloc(&out, kMaxTileBytes));
  tmaKernel<<<1, 128>>>(tileMap(device, rows, headDim), row0, headDim / 64, out);
  CHECK_CUDA(cudaGetLastError());
  const std::vector<uint4> bytes = download(out, size_t(64) * headDim * 2 / 16);
  const uint16_t* got = reinterpret_cast<const uint16_t*>(bytes.data());
  std::vector<float> gotValues(64 * headDim), wantValues(64 * headDim);
  for (int r = 0; r < 64; ++r)
    for (int c = 0; c < headDim; ++c) {
      gotValues[r * headDim + c] = got[tileElementOffset(r, c) / 2];
      wantValues[r * headDim + c] = global[size_t(row0 + r) * headDim + c];
    }
  const std::string what = "TMA tile vs the host swizzle, head dim " + std::to_string(headDim);
  return compare(what.c_str(), gotValues, wantValues, 64, headDim, 0.0);
}

template <int D>
bool rungTmaWgmma() {
  const int rows = 512, q0 = 64, k0 = 320;
  std::mt19937 random(D);
  std::normal_distribution<float> normal;
  std::vector<uint16_t> q(size_t(rows) * D), k(size_t(rows) * D);
  for (auto& x : q) x = bf16Bits(normal(random));
  for (auto& x : k) x = bf16Bits(normal(random));
  uint16_t* qDevice = upload(q);
  uint16_t* kDevice = upload(k);
  float* s = nullptr;
  CHECK_CUDA(cudaMalloc(&s, 64 * 64 * sizeof(float)));
  const int shared = 2 * 64 * D * 2 + 1024;
  CHECK_CUDA(cudaFuncSetAttribute(tmaWgmmaKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
  tmaWgmmaKernel<D><<<1, 128, shared>>>(tileMap(qDevice, rows, D), tileMap(kDevice, rows, D), q0, k0, s);
  CHECK_CUDA(cudaGetLastError());
  const std::vector<float> got = download(s, 64 * 64);
  std::vector<float> want(64 * 64, 0.f);
  for (int m = 0; m < 64; ++m)
    for (int n = 0; n < 64; ++n) {
      double sum = 0;
      for (int d = 0; d < D; ++d)
        sum += double(fromBf16Bits(q[size_t(q0 + m) * D + d])) * fromBf16Bits(k[size_t(k0 + n) * D + d]);
      want[m * 64 + n] = float(sum);
    }
  const std::string what = "TMA + wgmma S = Q K^T, head dim " + std::to_string(D);
  return compare(what.c_str(), got, want, 64, 64, 1e-4);
}

bool rungPipeline() {
  const int blocks = 40, maxCount = 300;
  const std::vector<int32_t> counts = {0, 1, kRingStages, kRingStages + 1, 300, 0, 2};
  std::mt19937 random(5);
  std::vector<uint32_t> k(size_t(blocks) * 64 * 128 / 2);
  for (auto& x : k) x = random();
  std::vector<int32_t> kept(counts.size() * maxCount, 0);
  for (auto& x : kept) x = int32_t(random() % blocks);
  std::vector<unsigned long long> want;
  for (size_t row = 0; row < counts.size(); ++row)
    for (int n = 0; n < counts[row]; ++n) {
      unsigned long long sum = 0;
      const size_t first = size_t(kept[row * maxCount + n]) * 64 * 128 / 2;
      for (size_t i = 0; i < 64 * 128 / 2; ++i) sum += k[first + i];
      want.push_back(sum);
    }
  uint32_t* kDevice = upload(k);
  int32_t* countsDevice = upload(counts);
  int32_t* keptDevice = upload(kept);
  unsigned long long* sums = nullptr;
  CHECK_CUDA(cudaMalloc(&sums, want.size() * sizeof(unsigned long long)));
  CHECK_CUDA(cudaMemset(sums, 0, want.size() * sizeof(unsigned long long)));
  const int shared = kRingStages * 64 * 128 * 2 + 1024;
  CHECK_CUDA(cudaFuncSetAttribute(pipelineKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
  pipelineKernel<<<1, 160, shared>>>(tileMap(kDevice, uint64_t(blocks) * 64, 128), countsDevice, keptDevice,
                                     int(counts.size()), maxCount, sums);
  CHECK_CUDA(cudaGetLastError());
  const std::vector<unsigned long long> got = download(sums, want.size());
  int wrong = 0;
  for (size_t i = 0; i < want.size(); ++i)
    if (got[i] != want[i] && ++wrong <= 10) std::printf("tile %zu: checksum %llu, want %llu\n", i, got[i], want[i]);
  std::printf("pipeline over lists of 0, 1, %d, %d, 300, 0, 2 blocks: %d of %zu tiles wrong\n", kRingStages,
              kRingStages + 1, wrong, want.size());
  return wrong == 0;
}

bool rungEnv() {
  int device = 0, major = 0, minor = 0, sms = 0;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CHECK_CUDA(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  std::printf("device %d: %s, compute capability %d.%d, %d SMs, %zu KiB shared memory per block (opt-in)\n", device,
              prop.name, major, minor, sms, prop.sharedMemPerBlockOptin / 1024);
  if (major != 9 || minor != 0) std::printf("not compute capability 9.0: the Hopper rungs cannot run here\n");
  return major == 9 && minor == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string rung = argc > 1 ? argv[1] : "";
  bool ok = false;
  if (rung == "env" && !rungEnv()) return 3;
  if (rung == "env") ok = true;
  else if (rung == "wgmma-plain") ok = rungWgmmaUnswizzled();
  else if (rung == "wgmma") ok = rungWgmma<1>(64);
  else if (rung == "advance") ok = rungWgmma<4>(64) && rungWgmma<8>(128);
  else if (rung == "pv") ok = rungPv<64>() && rungPv<128>();
  else if (rung == "tma") ok = rungTma(64) && rungTma(128);
  else if (rung == "tma-wgmma") ok = rungTmaWgmma<64>() && rungTmaWgmma<128>();
  else if (rung == "pipeline") ok = rungPipeline();
  else {
    std::fprintf(stderr, "usage: hopper-ladder env|wgmma-plain|wgmma|advance|pv|tma|tma-wgmma|pipeline\n");
    return 2;
  }
  const cudaError_t last = cudaDeviceSynchronize();
  if (last != cudaSuccess) {
    std::printf("%s: CUDA error %s (a trap here is the spin limit: a barrier phase never completed)\n", rung.c_str(),
                cudaGetErrorString(last));
    return 1;
  }
  std::printf("%s: %s\n", rung.c_str(), ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
