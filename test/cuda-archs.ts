// The default CUDA architecture list, read from its one source: CMakeLists.txt.
import * as fs from 'fs';
import * as path from 'path';

export function defaultCudaArchs(): string {
  const cmake = fs.readFileSync(path.resolve(__dirname, '..', 'CMakeLists.txt'), 'utf8');
  const m = /set\(NABLA_DEFAULT_CUDA_ARCHS "([^"]+)"\)/.exec(cmake);
  if (m === null) throw new Error('CMakeLists.txt sets no NABLA_DEFAULT_CUDA_ARCHS');
  return m[1];
}
