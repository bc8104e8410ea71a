import base from './jest.config.js';

/**
 * `npm run test:unit`: the unit tests alone, everything under test/unit/ (which mirrors src/).
 * They need no database and no HTTP server (scripts/check-layers.ts fails on a file there that
 * imports the test database, the fake tenant, pg or sockets), so no global setup looks for
 * PostgreSQL or prepares a template. `npm test` (jest.config.js) still runs them with the rest.
 */
export default {
  ...base,
  roots: ['<rootDir>/test/unit'],
  globalSetup: undefined,
  globalTeardown: undefined,
};
