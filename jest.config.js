import os from 'node:os';

/** Jest in native ESM mode: got and p-limit are ESM-only. Run through `npm test`. */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' } }],
  },
  // Sources import './x.js' (NodeNext); Jest resolves the .ts file.
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 30_000,
  // One worker per core, not Jest's default of cores - 1: the files mostly wait (on PostgreSQL,
  // child processes, the fake tenant's latency and rate limits), so on 2 cores the default ran
  // every file in band, one after another, with a core idle much of the time (issue #9). At most
  // 4, so the workers' pools and child processes stay well under PostgreSQL's 100 connections.
  maxWorkers: Math.min(4, os.availableParallelism()),
  globalSetup: '<rootDir>/test/global-setup.js',
  globalTeardown: '<rootDir>/test/global-teardown.js',
};
