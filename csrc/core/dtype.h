// Element types shared by every backend, and exact fp16/bf16 <-> fp32 conversion.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace nabla {

// Numbering is part of the JS boundary (lib/dtype.ts uses the same codes).
enum class DType : int32_t { Float32 = 0, Float16 = 1, BFloat16 = 2 };

inline size_t dtypeSize(DType t) { return t == DType::Float32 ? 4 : 2; }

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float16: return "float16";
    case DType::BFloat16: return "bfloat16";
  }
  return "unknown";
}

inline float bitsToFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t floatToBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// bf16 is the upper half of an fp32.
inline float bf16ToFloat(uint16_t h) { return bitsToFloat(uint32_t(h) << 16); }

// Round to nearest even; NaN stays NaN (quiet bit forced so truncation cannot make it Inf).
inline uint16_t floatToBf16(float f) {
  uint32_t u = floatToBits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// IEEE binary16 -> fp32, subnormals included.
inline float halfToFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  if (exp == 0x1f) return bitsToFloat(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    // value = man * 2^-24, exact in fp32
    float v = float(man) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bitsToFloat(sign | ((exp + 112) << 23) | (man << 13));
}

// fp32 -> IEEE binary16, round to nearest even, overflow to Inf, underflow through subnormals.
inline uint16_t floatToHalf(float f) {
  uint32_t u = floatToBits(f);
  uint16_t sign = uint16_t((u >> 16) & 0x8000);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00);   // NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00);  // rounds to >= 65520: Inf
  if (a < 0x38800000u) {                                 // below 2^-14: subnormal or zero
    if (a < 0x33000000u) return sign;                    // below 2^-25: rounds to zero
    // value = man * 2^(e-150); in units of the half subnormal step 2^-24 that is man >> (126 - e)
    uint32_t man = (a & 0x7fffffu) | 0x800000u;
    int s = 126 - int(a >> 23);  // 14..24
    uint32_t kept = man >> s;
    uint32_t rem = man & ((1u << s) - 1);
    uint32_t half = 1u << (s - 1);
    if (rem > half || (rem == half && (kept & 1))) kept++;
    return uint16_t(sign | kept);
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u) - (112u << 23);
  return uint16_t(sign | (r >> 13));
}

inline float loadElement(const void* base, size_t i, DType t) {
  switch (t) {
    case DType::Float32: return static_cast<const float*>(base)[i];
    case DType::Float16: return halfToFloat(static_cast<const uint16_t*>(base)[i]);
    case DType::BFloat16: return bf16ToFloat(static_cast<const uint16_t*>(base)[i]);
  }
  return 0.f;
}

inline void storeElement(void* base, size_t i, DType t, float v) {
  switch (t) {
    case DType::Float32: static_cast<float*>(base)[i] = v; break;
    case DType::Float16: static_cast<uint16_t*>(base)[i] = floatToHalf(v); break;
    case DType::BFloat16: static_cast<uint16_t*>(base)[i] = floatToBf16(v); break;
  }
}

}  // namespace nabla
