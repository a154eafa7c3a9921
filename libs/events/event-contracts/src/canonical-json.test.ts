// RFC 8785 canonical JSON (vectors from the RFC: §3.2.2 sorting and number serialization).
import { describe, expect, it } from 'vitest';
import { jcsCanonicalJson } from './canonical-json.js';
import { EventContractError } from './errors.js';

describe('jcsCanonicalJson', () => {
  it('sorts keys by UTF-16 code units, drops whitespace and spells numbers as ECMAScript does', () => {
    expect(jcsCanonicalJson({ b: [1, null, 'x'], a: { d: true, c: 1e21 } })).toBe('{"a":{"c":1e+21,"d":true},"b":[1,null,"x"]}');
    expect(jcsCanonicalJson({ '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '1': 'One', '\u{1F600}': 'Emoji', '\u00fc': 'Latin Small Letter U with Diaeresis' })).toBe(
      '{"\\r":"Carriage Return","1":"One","\u00fc":"Latin Small Letter U with Diaeresis","\u20ac":"Euro Sign","\u{1F600}":"Emoji"}',
    );
  });

  it('refuses what JSON cannot represent, with a code', () => {
    for (const value of [undefined, Number.NaN, Number.POSITIVE_INFINITY]) {
      let caught: unknown;
      try {
        jcsCanonicalJson(value);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(EventContractError);
      expect((caught as EventContractError).code).toBe('JSON_NOT_CANONICALIZABLE');
    }
  });
});
