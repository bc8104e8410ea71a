import { inspect } from 'node:util';

/**
 * A value that must never reach a log, an error message or the database. It prints as
 * `[redacted]` through String(), JSON.stringify and util.inspect; `reveal()` is the one way out.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '[redacted]';
  }
  toJSON(): string {
    return '[redacted]';
  }
  [inspect.custom](): string {
    return '[redacted]';
  }
}
