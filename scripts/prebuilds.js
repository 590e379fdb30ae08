#!/usr/bin/env node
// npm run prebuilds: the prebuilt binary that ships inside the npm package.
//   prebuilds/<platform>-<arch>/node.napi.node   (prebuildify's folder layout and Node-API name)
// One binary holds the CPU and the CUDA backend (static CUDA runtime: it loads on machines without
// an NVIDIA driver and reports CUDA unavailable there). Debug info is stripped.
// It is built in its own folder, build-prebuild/, configured on every run with NABLA_CUDA=ON and the
// default CUDA architectures: build/ may be CPU-only or narrowed with NABLA_CUDA_ARCHS (cmake-js only
// configures a folder once), and build/Release stays untouched.
// prebuildify drives only node-gyp, which cannot build the CUDA sources, hence this script.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { binaryGpuCode, missingGpuCode } = require('./fatbin');

const root = path.resolve(__dirname, '..');

function run(command, args, env = {}) {
  console.log(`prebuilds: ${[command, ...args].join(' ')}`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${command} exited with ${r.status}`);
}

function main() {
  const jobs = String(os.availableParallelism ? os.availableParallelism() : os.cpus().length);
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const out = path.join(root, 'build-prebuild');
  // NABLA_CUDA=ON: a prebuilt binary without the CUDA backend would be a silent downgrade.
  // NABLA_CUDA_ARCHS empty: CMakeLists.txt's default architectures.
  const env = { CMAKE_BUILD_PARALLEL_LEVEL: jobs, NABLA_CUDA: 'ON', NABLA_CUDA_ARCHS: '' };
  run(process.execPath, [cmakeJs, 'configure', '--out', out], env);
  run(process.execPath, [cmakeJs, 'build', '--out', out, '--parallel', jobs], env);
  const built = path.join(out, 'Release', 'nabla_attention.node');
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const target = path.join(dir, 'node.napi.node');
  if (process.platform === 'linux') run('strip', ['--strip-debug', '-o', target, built]);
  else fs.copyFileSync(built, target);

  const addon = require(target);
  const build = addon.backends().build;
  if (!build.cudaCompiled) throw new Error('the prebuilt binary has no CUDA backend');
  // every architecture asked for must have left its cubin or PTX in the binary (read from its bytes)
  const code = binaryGpuCode(fs.readFileSync(target));
  const missing = missingGpuCode(code, build.cudaArchs);
  if (missing.length > 0) throw new Error(`the prebuilt binary lacks GPU code for ${missing.join(', ')}`);
  console.log(
    `prebuilds: ${path.relative(root, target)} (${(fs.statSync(target).size / 1e6).toFixed(1)} MB, ` +
      `CUDA archs ${build.cudaArchs}, CUDA runtime ${build.cudaRuntimeVersion})`,
  );
  console.log(`prebuilds: GPU code in the binary: ${[...new Set(code.map((c) => c.arch))].join(' ')}`);
}

try {
  main();
} catch (err) {
  console.error(`prebuilds: ${err.message}`);
  process.exitCode = 1;
}
