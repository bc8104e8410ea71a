import { describe, expect, it } from '@jest/globals';
import { createPriorityLane } from '../../../src/pipeline/priority-lane.js';

// The lane's rules that need no sync pass; hand-offs during a pass: test/pipeline/priority-lane.test.ts.
describe('priority lane', () => {
  it('takes no hand-off while no pass runs', () => {
    expect(createPriorityLane().hand(['auth0|a'])).toBeUndefined();
  });
});
