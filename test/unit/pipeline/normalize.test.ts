import { describe, expect, it } from '@jest/globals';
import { InvalidRecordError, toWarehouseRows } from '../../../src/pipeline/normalize.js';

const full = {
  id: 'rt_1',
  user_id: 'auth0|1',
  created_at: '2024-05-01T13:00:30.038Z',
  idle_expires_at: '2024-06-01T13:00:30.038Z',
  expires_at: null,
  last_exchanged_at: '2024-05-02T10:00:00+02:00',
  client_id: 'client-a',
  session_id: null,
  rotating: true,
  device: { initial_ip: '10.0.0.1', initial_asn: '1234', last_ip: '10.0.0.2', last_user_agent: 'curl' },
  resource_servers: [{ audience: 'https://api/', scopes: 'openid profile offline_access' }],
  refresh_token_metadata: { app: 'ios' },
  future_field: { nested: true },
};

describe('toWarehouseRows', () => {
  it('maps a complete token, keeping the raw object whole', () => {
    const rows = toWarehouseRows('auth0|1', [full]);
    expect(rows.tokens).toEqual([
      {
        id: 'rt_1',
        user_id: 'auth0|1',
        client_id: 'client-a',
        session_id: null,
        rotating: true,
        created_at: '2024-05-01T13:00:30.038Z',
        idle_expires_at: '2024-06-01T13:00:30.038Z',
        expires_at: null,
        last_exchanged_at: '2024-05-02T08:00:00.000Z',
        metadata: '{"app":"ios"}',
        raw: JSON.stringify(full),
      },
    ]);
    expect(rows.devices).toEqual([
      {
        token_id: 'rt_1',
        initial_ip: '10.0.0.1',
        initial_asn: '1234',
        initial_user_agent: null,
        last_ip: '10.0.0.2',
        last_asn: null,
        last_user_agent: 'curl',
      },
    ]);
    expect(rows.resourceServers).toEqual([{ token_id: 'rt_1', audience: 'https://api/', scopes: 'openid profile offline_access' }]);
  });

  it('writes no device row when the API gave no device key, and null metadata as null', () => {
    const rows = toWarehouseRows('auth0|1', [{ id: 'rt_2', refresh_token_metadata: null }]);
    expect(rows.devices).toEqual([]);
    expect(rows.resourceServers).toEqual([]);
    expect(rows.tokens[0]).toMatchObject({ id: 'rt_2', user_id: 'auth0|1', metadata: null, rotating: null, created_at: null });
  });

  it('keeps the last copy of a token listed twice', () => {
    const rows = toWarehouseRows('u', [{ id: 'a', client_id: 'old' }, { id: 'b' }, { id: 'a', client_id: 'new' }]);
    expect(rows.tokens.map((t) => [t.id, t.client_id])).toEqual([
      ['a', 'new'],
      ['b', null],
    ]);
  });

  it.each([
    [[{ client_id: 'x' }], 'refresh_tokens[0].id is missing or not a string'],
    [[{ id: 'ok' }, { id: 7 }], 'refresh_tokens[1].id is missing or not a string'],
    [[{ id: 'a', created_at: 'yesterday' }], 'refresh_tokens[0] (id a).created_at is not an ISO-8601 date: "yesterday"'],
    [[{ id: 'a', expires_at: 1714568430 }], 'refresh_tokens[0] (id a).expires_at is not an ISO-8601 date'],
    [[{ id: 'a', rotating: 'yes' }], 'refresh_tokens[0] (id a).rotating is not a boolean'],
    [[{ id: 'a', device: 'phone' }], 'refresh_tokens[0] (id a).device is not an object'],
    [[{ id: 'a', resource_servers: [{ scopes: 'x' }] }], 'refresh_tokens[0] (id a).resource_servers[0].audience is missing'],
    [[{ id: 'a', user_id: 'someone-else' }], 'refresh_tokens[0] (id a).user_id is "someone-else", expected "u"'],
    [[{ id: 'a', client_id: 'x\u0000y' }], 'refresh_tokens[0] (id a) contains a NUL character'],
    [['not an object'], 'refresh_tokens[0] is not an object'],
    // Date.parse takes these and rolls them over (March 3rd; year 0 = 1 BC): dates that do not exist.
    [[{ id: 'a', created_at: '2026-02-31T00:00:00Z' }], 'refresh_tokens[0] (id a).created_at is not a date that exists: "2026-02-31T00:00:00Z"'],
    [[{ id: 'a', expires_at: '0000-01-01T00:00:00.000Z' }], 'refresh_tokens[0] (id a).expires_at is not a date that exists'],
    [[{ id: 'a', last_exchanged_at: '2025-02-29T10:00:00Z' }], 'refresh_tokens[0] (id a).last_exchanged_at is not a date that exists'],
    [[{ id: 'a', idle_expires_at: '2026-01-01T24:00:00Z' }], 'refresh_tokens[0] (id a).idle_expires_at is not a date that exists'],
    // Indexed text over 512 bytes would fail the whole write with an index-row-size error.
    [[{ id: 'r'.repeat(513) }], 'refresh_tokens[0].id is longer than 512 bytes'],
    [[{ id: 'a', client_id: 'c'.repeat(600) }], 'refresh_tokens[0] (id a).client_id is longer than 512 bytes'],
    [[{ id: 'a', client_id: '\u00e9'.repeat(300) }], 'refresh_tokens[0] (id a).client_id is longer than 512 bytes'],
    [
      [{ id: 'a', resource_servers: [{ audience: 'https://' + 'a'.repeat(600) }] }],
      'refresh_tokens[0] (id a).resource_servers[0].audience is longer than 512 bytes',
    ],
  ])('rejects a record that cannot be keyed or typed, naming the field (%#)', (tokens, message) => {
    expect(() => toWarehouseRows('u', tokens as never)).toThrow(InvalidRecordError);
    expect(() => toWarehouseRows('u', tokens as never)).toThrow(message);
  });

  it('takes real dates, leap days included, and names a token id without its control characters', () => {
    const rows = toWarehouseRows('u', [{ id: 'a', created_at: '2024-02-29T23:59:59.999Z', expires_at: '2000-02-29T00:00:00+01:00' }] as never);
    expect(rows.tokens[0]).toMatchObject({ created_at: '2024-02-29T23:59:59.999Z', expires_at: '2000-02-28T23:00:00.000Z' });
    expect(() => toWarehouseRows('u', [{ id: 'a\u001b[2Jb', rotating: 1 }] as never)).toThrow('refresh_tokens[0] (id ab).rotating');
  });
});
