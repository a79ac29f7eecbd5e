'use strict';
// Redis's glob language (KEYS, SCAN MATCH, and the module's patterns): `*`, `?`, `[abc]`,
// `[^a]`, `[a-z]`, `\` escapes. Compiled to a RegExp once per pattern.

const reEscape = (c) => c.replace(/[\\^$.*+?()[\]{}|/-]/g, (x) => `\\${x}`);

function globToRegExp(pattern) {
  let out = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') {
      out += '[\\s\\S]*';
    } else if (c === '?') {
      out += '[\\s\\S]';
    } else if (c === '\\' && i + 1 < pattern.length) {
      out += reEscape(pattern[++i]);
    } else if (c === '[') {
      // Like stringmatchlen: `[^...]` negates, `a-z` ranges (either order), `\x` escapes;
      // an unterminated class runs to the end of the pattern.
      let j = i + 1;
      let negate = false;
      if (pattern[j] === '^') { negate = true; j++; }
      const items = [];
      while (j < pattern.length && pattern[j] !== ']') {
        if (pattern[j] === '\\' && j + 1 < pattern.length) {
          items.push(reEscape(pattern[j + 1]));
          j += 2;
        } else if (j + 2 < pattern.length && pattern[j + 1] === '-' && pattern[j + 2] !== ']') {
          let a = pattern[j];
          let b = pattern[j + 2];
          if (a > b) [a, b] = [b, a];
          items.push(`${reEscape(a)}-${reEscape(b)}`);
          j += 3;
        } else {
          items.push(reEscape(pattern[j]));
          j++;
        }
      }
      i = j; // at the closing ']' (or past the end)
      if (items.length === 0) out += negate ? '[\\s\\S]' : '(?!)';
      else out += `[${negate ? '^' : ''}${items.join('')}]`;
    } else {
      out += reEscape(c);
    }
  }
  return new RegExp(`${out}$`);
}

const SPECIAL = /[*?[\\]/;
const isPattern = (s) => SPECIAL.test(s);

// The literal text a pattern's matches all start with (up to its first special character).
function literalPrefix(pattern) {
  const m = SPECIAL.exec(pattern);
  return m ? pattern.slice(0, m.index) : pattern;
}

module.exports = { globToRegExp, isPattern, literalPrefix };
