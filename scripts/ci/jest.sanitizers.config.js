// Jest for the sanitizer job: the project's config without its global setup (which compiles lib/
// with tsc: the job builds dist/ first, outside the preloaded ASan runtime) and without the
// summary reporter's line (npm test's final line stays the one CI reads).
const base = require('../../jest.config.js');

/** @type {import('jest').Config} */
module.exports = { ...base, rootDir: '../..', globalSetup: undefined, reporters: ['default'] };
