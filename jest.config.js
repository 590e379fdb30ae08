/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  testTimeout: 120000,
  globalSetup: '<rootDir>/scripts/jest-global-setup.js',
  reporters: ['default', '<rootDir>/scripts/jest-summary.js'],
  // a line per test start and end in the file NABLA_TEST_PROGRESS names (bench/jest-files.sh)
  setupFilesAfterEnv: process.env.NABLA_TEST_PROGRESS ? ['<rootDir>/scripts/jest-progress.js'] : [],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', diagnostics: { warnOnly: false } }] },
};
