/** An async iterator with a look-ahead window: `peek(k)` without consuming, `next()` to consume. */
export class Lookahead<T> {
  readonly #buffer: T[] = [];
  #done = false;
  readonly #iterator: AsyncIterator<T>;

  constructor(source: AsyncIterable<T>) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  async peek(k: number): Promise<T | undefined> {
    while (this.#buffer.length <= k && !this.#done) {
      const step = await this.#iterator.next();
      if (step.done) this.#done = true;
      else this.#buffer.push(step.value);
    }
    return this.#buffer[k];
  }

  async next(): Promise<T | undefined> {
    const value = await this.peek(0);
    if (value !== undefined) this.#buffer.shift();
    return value;
  }

  async return(): Promise<void> {
    await this.#iterator.return?.();
  }
}
