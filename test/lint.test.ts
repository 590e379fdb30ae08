// `npm run lint` as one test of the suite: Biome (format + lint of TS/JS/JSON, biome.jsonc) and
// clang-format (csrc/ and bench/native/, .clang-format). A finding fails this one test; the rest
// of the suite still runs and npm test still ends with its 'N passed, N failed' line.
// The command is read from package.json, so the test and `npm run lint` cannot drift apart.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const root = path.resolve(__dirname, '..');

test('npm run lint: the tree is formatted (npm run format fixes it) and lint finds nothing', () => {
  const lint: string = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.lint;
  // as npm runs a script: in the package root with node_modules/.bin first on PATH
  const bin = path.join(root, 'node_modules', '.bin');
  const r = spawnSync('sh', ['-c', lint], {
    cwd: root,
    env: { ...process.env, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`npm run lint exited with ${r.status}:\n${r.stdout}\n${r.stderr}`);
  expect(r.status).toBe(0);
});
