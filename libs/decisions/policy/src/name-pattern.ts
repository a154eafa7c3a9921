/**
 * A policy glob: `*` matches any run of characters and `?` one character; with a separator
 * (`.` for SQL names, `/` for program paths) neither crosses it, so `public.*` never matches
 * `mydb.public.users` or `public.x.y`. Everything else is literal and case-sensitive.
 */
export class NamePattern {
  private readonly regex: RegExp;

  constructor(
    readonly source: string,
    separator?: string,
  ) {
    const any = separator === undefined ? '[\\s\\S]' : `[^${escapeRegExp(separator)}]`;
    let body = '';
    for (const char of source) {
      if (char === '*') body += `${any}*`;
      else if (char === '?') body += any;
      else body += escapeRegExp(char);
    }
    this.regex = new RegExp(`^${body}$`, 'u');
  }

  matches(name: string): boolean {
    return this.regex.test(name);
  }
}

/** Any of several patterns. */
export class NamePatternList {
  private readonly patterns: readonly NamePattern[];

  constructor(sources: readonly string[], separator?: string) {
    this.patterns = sources.map((source) => new NamePattern(source, separator));
  }

  matches(name: string): boolean {
    return this.patterns.some((pattern) => pattern.matches(name));
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}
