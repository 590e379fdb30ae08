#!/usr/bin/env node
// npm install hook: use a prebuilt binary when one loads on this machine, else build from source.
//   cmake-js (CMakeLists.txt): CPU backend + CUDA backend when nvcc is found (NABLA_CUDA=AUTO|ON|OFF)
//   node-gyp (binding.gyp):    CPU-only fallback for machines without CMake
// Flags: --build-from-source (or NABLA_BUILD_FROM_SOURCE=1) skips the prebuilt binary.
// Nothing is downloaded: cmake-js takes the Node-API headers from the node-api-headers package.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');
const fromSource = process.argv.includes('--build-from-source') || process.env.NABLA_BUILD_FROM_SOURCE === '1';

function prebuildLoads() {
  const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!fs.existsSync(dir)) return false;
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.node'))) {
    try {
      require(path.join(dir, file));
      console.log(`nabla-attention: using prebuilt binary ${path.relative(root, path.join(dir, file))}`);
      return true;
    } catch (err) {
      console.log(
        `nabla-attention: prebuilt ${file} does not load here (${err.message.split('\n')[0]}); building from source`,
      );
    }
  }
  return false;
}

function has(command, args) {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.status === 0;
}

function run(command, args, env) {
  console.log(`nabla-attention: ${[command, ...args].join(' ')}`);
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  return r.status === 0;
}

function buildWithCmake() {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));
  const env = { CMAKE_BUILD_PARALLEL_LEVEL: jobs };
  // configure every time (cmake-js build alone configures a folder only once): NABLA_CUDA (default
  // AUTO, not a value cached by an earlier build) and NABLA_CUDA_ARCHS apply to this build
  const configure = [cmakeJs, 'configure', `--CDNABLA_CUDA=${process.env.NABLA_CUDA || 'AUTO'}`];
  return run(process.execPath, configure, env) && run(process.execPath, [cmakeJs, 'build', '--parallel', jobs], env);
}

function buildWithNodeGyp() {
  // Without a configured nodedir node-gyp downloads Node's headers; use the ones installed beside
  // this node when they are there, so the fallback build needs no network either.
  const args = ['rebuild'];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && fs.existsSync(path.join(prefix, 'include', 'node', 'node_api.h')))
    args.push(`--nodedir=${prefix}`);
  // npm sets npm_config_node_gyp to the node-gyp it ships; fall back to one on PATH.
  const gyp = process.env.npm_config_node_gyp;
  return gyp ? run(process.execPath, [gyp, ...args]) : run('node-gyp', args);
}

function main() {
  if (!fromSource && prebuildLoads()) return 0;
  if (has('cmake', ['--version'])) {
    if (buildWithCmake()) return 0;
    console.error('nabla-attention: the CMake build failed (see the output above).');
    return 1;
  }
  if (process.env.NABLA_CUDA === 'ON') {
    console.error('nabla-attention: NABLA_CUDA=ON needs CMake, which was not found on PATH.');
    return 1;
  }
  console.log('nabla-attention: CMake not found; building the CPU-only backend with node-gyp.');
  if (buildWithNodeGyp()) return 0;
  console.error(
    'nabla-attention: the node-gyp build failed. Install CMake (and a C++17 compiler), then run npm rebuild nabla-attention.',
  );
  return 1;
}

process.exitCode = main();
