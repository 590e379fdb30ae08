// The GPU code inside a native binary, read from its bytes (no cuobjdump needed): the ELF section
// .nv_fatbin holds one fat-binary container per CUDA source file; each container lists the files
// embedded in it, machine code (ELF cubins) or PTX, with the SM version each was compiled for.
//
//   ELF64 header:   e_shoff u64 @0x28, e_shentsize u16 @0x3a, e_shnum u16 @0x3c, e_shstrndx u16 @0x3e
//   section header: sh_name u32 @0, sh_offset u64 @0x18, sh_size u64 @0x20
//   container:      magic u32 0xba55ed50 @0, version u16 @4, header size u16 @6 (16),
//                   size of the entries that follow u64 @8
//   entry:          kind u16 @0 (1 PTX, 2 ELF), header size u32 @4, payload size u64 @8 (padded to 8),
//                   SM version u32 @28 (e.g. 90, 100, 120), flags u64 @40: 0x100000 arch-specific
//                   ("sm_90a"), 0x200000 family-specific ("sm_100f"); the payload follows the header
// All fields little-endian. The layout is NVIDIA's undocumented container format as open-source
// fat-binary readers describe it, checked against what nvcc 13.0 writes.
'use strict';

const CONTAINER_MAGIC = 0xba55ed50;
const KINDS = { 1: 'ptx', 2: 'elf' };
const ARCH_SPECIFIC = 0x100000;
const FAMILY_SPECIFIC = 0x200000;

/** The [offset, size] of section `name` in an ELF64 little-endian file, or null when it has none. */
function elfSection(file, name) {
  if (file.length < 64 || file.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file');
  if (file[4] !== 2 || file[5] !== 1) throw new Error('not a 64-bit little-endian ELF file');
  const shoff = Number(file.readBigUInt64LE(0x28));
  const shentsize = file.readUInt16LE(0x3a),
    shnum = file.readUInt16LE(0x3c),
    shstrndx = file.readUInt16LE(0x3e);
  if (shoff + shnum * shentsize > file.length || shstrndx >= shnum) throw new Error('truncated ELF section table');
  const header = (i) => shoff + i * shentsize;
  const strings = Number(file.readBigUInt64LE(header(shstrndx) + 0x18));
  for (let i = 0; i < shnum; i++) {
    const at = header(i);
    const nameStart = strings + file.readUInt32LE(at);
    const nameEnd = file.indexOf(0, nameStart);
    if (file.toString('latin1', nameStart, nameEnd) === name)
      return [Number(file.readBigUInt64LE(at + 0x18)), Number(file.readBigUInt64LE(at + 0x20))];
  }
  return null;
}

/**
 * The entries of the fat-binary containers in `bytes` (the contents of a .nv_fatbin section):
 * [{ kind: 'elf' | 'ptx', arch: 'sm_90a' | 'compute_90' | ..., sm: 90 }]. Containers may be
 * separated by zero padding; anything else between them is an error.
 */
function fatbinEntries(bytes) {
  const entries = [];
  let pos = 0;
  while (pos + 16 <= bytes.length) {
    if (bytes.readUInt32LE(pos) === 0) {
      pos += 4; // padding between containers
      continue;
    }
    if (bytes.readUInt32LE(pos) !== CONTAINER_MAGIC)
      throw new Error(`no fat-binary container at offset ${pos} (magic ${bytes.readUInt32LE(pos).toString(16)})`);
    const end = pos + bytes.readUInt16LE(pos + 6) + Number(bytes.readBigUInt64LE(pos + 8));
    if (end > bytes.length) throw new Error(`fat-binary container at offset ${pos} runs past the section`);
    let at = pos + bytes.readUInt16LE(pos + 6);
    while (at < end) {
      const headerSize = bytes.readUInt32LE(at + 4);
      const payloadSize = Number(bytes.readBigUInt64LE(at + 8));
      if (headerSize < 48 || at + headerSize + payloadSize > end)
        throw new Error(`bad fat-binary entry at offset ${at}`);
      const kind = KINDS[bytes.readUInt16LE(at)] ?? `kind ${bytes.readUInt16LE(at)}`;
      const sm = bytes.readUInt32LE(at + 28);
      const flags = bytes.readUInt32LE(at + 40);
      const variant = flags & ARCH_SPECIFIC ? 'a' : flags & FAMILY_SPECIFIC ? 'f' : '';
      entries.push({ kind, sm, arch: `${kind === 'ptx' ? 'compute' : 'sm'}_${sm}${variant}` });
      at += headerSize + payloadSize;
    }
    pos = end;
  }
  return entries;
}

/** The GPU code in a native binary (an ELF shared object or object file); [] when it has none. */
function binaryGpuCode(file) {
  const section = elfSection(file, '.nv_fatbin');
  if (section === null) return [];
  const [offset, size] = section;
  if (offset + size > file.length) throw new Error('the .nv_fatbin section runs past the file');
  return fatbinEntries(file.subarray(offset, offset + size));
}

/**
 * The code names a CMake CUDA_ARCHITECTURES list asks for: "90a-real" -> sm_90a, "90-virtual" ->
 * compute_90, "100" -> sm_100 and compute_100. (lib/archs.ts reads the same list for backends().)
 */
function wantedGpuCode(cudaArchs) {
  return cudaArchs
    .split(/[;\s]+/)
    .filter((s) => s !== '')
    .flatMap((entry) => {
      const m = /^(\d+[af]?)(?:-(real|virtual))?$/.exec(entry);
      if (m === null) throw new Error(`cannot tell which code the CUDA architecture "${entry}" makes`);
      return [...(m[2] !== 'virtual' ? [`sm_${m[1]}`] : []), ...(m[2] !== 'real' ? [`compute_${m[1]}`] : [])];
    });
}

/** The names wanted by `cudaArchs` that no entry of `code` (binaryGpuCode) provides. */
function missingGpuCode(code, cudaArchs) {
  const present = new Set(code.map((c) => c.arch));
  return wantedGpuCode(cudaArchs).filter((name) => !present.has(name));
}

module.exports = { binaryGpuCode, elfSection, fatbinEntries, missingGpuCode, wantedGpuCode };
