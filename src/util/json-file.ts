/**
 * JSON files a user writes (presets, serve options, experiment budgets): a syntax error names the file, the line
 * and the column, as `file:line:col: what is wrong`, whatever Node's own JSON.parse message says in this version
 * (some give a position, some quote the whole text, none a line). JSON.parse does the parsing; only on failure does
 * a small scanner here walk the text to find where and why it broke.
 */
import { readFileSync } from 'node:fs';

export class JsonFileError extends Error {
  override name = 'JsonFileError';

  constructor(
    readonly file: string,
    /** 1-based, or undefined when the error has no place in the text (the file cannot be read). */
    readonly line: number | undefined,
    readonly column: number | undefined,
    readonly detail: string,
  ) {
    super(line === undefined ? `${file}: ${detail}` : `${file}:${line}:${column}: ${detail}`);
  }
}

/** 1-based line and column (in characters) of offset `at` of `text`. */
export function lineColumn(text: string, at: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i >= 0 && i < at; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  return { line, column: at - lineStart + 1 };
}

/**
 * Parses `text`, the contents of `file`; a syntax error is a JsonFileError `file:line:col: not valid JSON: ...`.
 * A leading byte-order mark is ignored (some editors write one).
 */
export function parseJsonFile(file: string, text: string): unknown {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch (err) {
    const found = findSyntaxError(body) ?? fromNodeMessage(body, (err as Error).message);
    if (!found) throw new JsonFileError(file, undefined, undefined, `not valid JSON: ${(err as Error).message.split('\n')[0]}`);
    const { line, column } = lineColumn(body, found.at);
    throw new JsonFileError(file, line, column, `not valid JSON: ${found.message}`);
  }
}

/** Reads and parses a JSON file; a missing or unreadable file is a JsonFileError naming it too. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a folder, not a JSON file' : (err as Error).message;
    throw new JsonFileError(file, undefined, undefined, why);
  }
  return parseJsonFile(file, text);
}

/** The position Node's message gives ("... in JSON at position 31"), for a text the scanner below finds no fault in. */
function fromNodeMessage(text: string, message: string): { at: number; message: string } | undefined {
  const m = / in JSON at position (\d+)/.exec(message);
  if (!m) return undefined;
  return { at: Math.min(Number(m[1]), text.length), message: message.slice(0, m.index) };
}

interface Fault {
  at: number;
  message: string;
}

class Fail {
  constructor(readonly fault: Fault) {}
}

/** Where and why `text` is not JSON (RFC 8259), or undefined if it is. */
export function findSyntaxError(text: string): Fault | undefined {
  let i = 0;
  const n = text.length;
  const fail = (at: number, message: string): never => {
    throw new Fail({ at, message });
  };
  const where = (at: number) => {
    const { line, column } = lineColumn(text, at);
    return `${line}:${column}`;
  };
  const show = (at: number): string => {
    const ch = text[at];
    if (ch === '\n' || ch === '\r') return 'a line break';
    const word = /^[A-Za-z_$][\w$]*/.exec(text.slice(at, at + 40));
    return word ? `'${word[0]}'` : JSON.stringify(ch);
  };
  const unexpected = (at: number, expected: string): never => {
    if (at >= n) return fail(n, `the file ends where ${expected} should be`);
    const ch = text[at];
    if (ch === '/' && (text[at + 1] === '/' || text[at + 1] === '*')) return fail(at, 'JSON has no comments');
    if (ch === "'") return fail(at, 'strings take double quotes (") in JSON');
    return fail(at, `unexpected ${show(at)}: expected ${expected}`);
  };
  const ws = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const string = () => {
    const open = i++;
    for (;;) {
      if (i >= n) fail(n, `the file ends inside the string opened at ${where(open)}`);
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail(i, c === 10 || c === 13 ? 'a line break inside a string (close its quote on the same line, or write \\n)' : 'a control character inside a string');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail(i, 'bad \\u escape: expected 4 hex digits');
          i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else fail(i, `bad escape \\${e ?? ''} in a string`);
      } else i++;
    }
  };
  const digits = (what: string) => {
    const start = i;
    while (i < n && text[i] >= '0' && text[i] <= '9') i++;
    if (i === start) unexpected(i, what);
  };
  const number = () => {
    if (text[i] === '-') i++;
    if (text[i] === '0') {
      i++;
      if (text[i] >= '0' && text[i] <= '9') fail(i - 1, 'a number cannot start with 0 (leading zeros are not JSON)');
    } else digits('a digit');
    if (text[i] === '.') {
      i++;
      digits('a digit after the decimal point');
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      digits('the digits of the exponent');
    }
  };
  const value = (expected = 'a value') => {
    ws();
    const c = text[i];
    if (c === '{') return object();
    if (c === '[') return array();
    if (c === '"') return string();
    if (c === '-' || (c >= '0' && c <= '9')) return number();
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    return unexpected(i, expected);
  };
  const object = () => {
    const open = i++;
    let comma = -1;
    ws();
    if (text[i] === '}') {
      i++;
      return;
    }
    for (;;) {
      ws();
      if (text[i] !== '"') {
        if (text[i] === '}' && comma >= 0) fail(comma, "a comma before '}' (JSON allows no trailing comma)");
        unexpected(i, 'a property name in double quotes');
      }
      string();
      ws();
      if (text[i] !== ':') unexpected(i, "':' after the property name");
      i++;
      value();
      ws();
      if (text[i] === ',') {
        comma = i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return;
      }
      if (i >= n) fail(n, `the file ends inside the object opened at ${where(open)} (a '}' is missing)`);
      unexpected(i, "',' or '}' after the property value");
    }
  };
  const array = () => {
    const open = i++;
    let comma = -1;
    ws();
    if (text[i] === ']') {
      i++;
      return;
    }
    for (;;) {
      ws();
      if (text[i] === ']' && comma >= 0) fail(comma, "a comma before ']' (JSON allows no trailing comma)");
      value();
      ws();
      if (text[i] === ',') {
        comma = i++;
        continue;
      }
      if (text[i] === ']') {
        i++;
        return;
      }
      if (i >= n) fail(n, `the file ends inside the array opened at ${where(open)} (a ']' is missing)`);
      unexpected(i, "',' or ']' after the array element");
    }
  };
  try {
    ws();
    if (i >= n) fail(n, 'the file is empty');
    value();
    ws();
    if (i < n) fail(i, `unexpected ${show(i)} after the end of the JSON value`);
    return undefined;
  } catch (err) {
    if (err instanceof Fail) return err.fault;
    if (err instanceof RangeError) return undefined; // nested too deep for this scanner: Node's message will do
    throw err;
  }
}
