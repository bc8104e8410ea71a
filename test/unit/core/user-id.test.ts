import { describe, expect, it } from '@jest/globals';
import { checkUserId, describeUserId, invalidUserIdKey, MAX_USER_ID_LENGTH } from '../../../src/core/user-id.js';

describe('checkUserId', () => {
  it('takes real Auth0 IDs, up to 512 characters', () => {
    for (const id of [
      'auth0|5f7c8ec7c33c6c004bbafe82',
      'google-oauth2|104375927183625184016',
      'samlp|acme|jane@acme.com',
      'x'.repeat(512),
      'email|ünï cøde',
      'email|\u{1f600}',
    ]) {
      expect(checkUserId(id)).toBeUndefined();
    }
  });

  it.each([
    ['', 'is empty'],
    [' \t ', 'is only whitespace'],
    ['x'.repeat(513), 'is longer than 512 characters'],
    ['auth0|\u0000', 'contains a NUL character'],
    ['auth0|\u001b[31m', 'contains a control character'],
    ['auth0|a\nb', 'contains a control character'],
    ['auth0|\u0085', 'contains a control character'],
    ['auth0|\u202eexe', 'contains a control character'],
    ['auth0|\ud800x', 'is not valid Unicode (an unpaired surrogate)'],
  ])('refuses %j: %s', (id, problem) => {
    expect(checkUserId(id)).toBe(problem);
  });
});

describe('invalidUserIdKey', () => {
  it('keeps an invalid ID invalid, storable and distinct from any valid ID', () => {
    const long = 'a'.repeat(5000);
    expect(invalidUserIdKey(long)).toHaveLength(MAX_USER_ID_LENGTH + 1);
    expect(checkUserId(invalidUserIdKey(long))).toBeDefined();
    expect(invalidUserIdKey('auth0|\u0000x')).toBe('auth0|\u001ax');
    expect(invalidUserIdKey('auth0|\udc00x')).toBe('auth0|\u001ax');
    expect(checkUserId(invalidUserIdKey('auth0|\u0000x'))).toBeDefined();
    expect(invalidUserIdKey('auth0|\u0007x')).toBe('auth0|\u0007x');
  });

  it('describes an ID without control characters, cut short', () => {
    expect(describeUserId('auth0|\u001b[2Jx')).toBe('"auth0|x"');
    expect(describeUserId('y'.repeat(200))).toHaveLength(82);
  });
});
