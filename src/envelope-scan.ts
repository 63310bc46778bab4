/**
 * The relay's envelope check (SPEC §2): one pass over the frame's text that decides exactly
 * what `JSON.parse` followed by the zod `EnvelopeSchema` decides, plus the r2 rule that a
 * repeated top-level key makes the envelope invalid, without building the parsed object.
 *
 * Why not `JSON.parse` + zod: the hub reads four top-level strings of a frame and relays the
 * rest as text, yet parsing builds and internalises every key and string of `data`, and zod 4
 * runs on its slow path in the Workers runtime (no `new Function` there). This scanner walks
 * the text once, checks the whole of it against the JSON grammar, decodes only the values of
 * `type`, `id`, `receiver_id` and `sender_id`, and notes where `sender_id` and `data` sit so
 * the relay can splice the text. The property test (test/node/envelope-scan.test.ts) holds it
 * to `JSON.parse` + zod over hundreds of thousands of generated frames.
 *
 * Runtime-free and importable from Node (explicit `.ts` specifiers, erasable syntax only).
 */

/** A frame that passed every rule of SPEC §2, with what the relay needs from it. */
export interface ScannedEnvelope {
  ok: true;
  type: string;
  id: string | undefined;
  receiverId: string | undefined;
  senderId: string | undefined;
  /** The `sender_id` value's text as [start, end), or -1 when the frame has none. */
  senderStart: number;
  senderEnd: number;
  /** The `data` value's text as [start, end), or -1 when the frame has none. */
  dataStart: number;
  dataEnd: number;
  /**
   * Where a `sender_id` member is inserted when the frame has none: just after the last
   * member's value (a valid envelope has `type`, so it is never empty).
   */
  insertAt: number;
}

/**
 * A frame that broke a rule. `id` is the request id worth echoing (a string of at most 128
 * characters, written once); `identification` says that some top-level `type` is the string
 * "identification", so an ill-formed attempt is still recognised as one (SPEC §4).
 */
export interface RejectedEnvelope {
  ok: false;
  id: string | undefined;
  identification: boolean;
}

export type Scan = ScannedEnvelope | RejectedEnvelope;

/** Not JSON, or JSON but not an object: nothing in it is read. */
const NOT_AN_OBJECT: RejectedEnvelope = Object.freeze({ ok: false, id: undefined, identification: false });

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Top-level keys the scanner knows by name, one bit each (repeats are found by the mask). */
const TYPE = 1;
const ID = 2;
const DATA = 4;
const RECEIVER_ID = 8;
const SENDER_ID = 16;
const LOG = 32;

/** Unknown keys are compared in a small array; past this many, in a Set (no quadratic walk). */
const LINEAR_KEYS = 8;

/** The longest `id` that is echoed and accepted (SPEC §2), in UTF-16 code units as zod counts. */
const MAX_ID_LENGTH = 128;

/** Whether the last string scanned held an escape (then its value is decoded with JSON.parse). */
let escaped = false;

/** Open containers of the value being skipped: 1 object, 0 array. Reused between frames. */
const containers: number[] = [];

/** JSON's whitespace is exactly these four characters (a BOM or NBSP is not). */
function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

function isHex(c: number): boolean {
  if (c >= 0x30 && c <= 0x39) return true;
  const lower = c | 0x20;
  return lower >= 0x61 && lower <= 0x66;
}

/** The index just past the string literal opening at `i`, or -1. Sets `escaped`. */
function scanString(text: string, i: number): number {
  escaped = false;
  for (i++; ; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      escaped = true;
      const e = text.charCodeAt(++i);
      if (e === 0x75) {
        if (!isHex(text.charCodeAt(i + 1)) || !isHex(text.charCodeAt(i + 2)) || !isHex(text.charCodeAt(i + 3)) || !isHex(text.charCodeAt(i + 4))) {
          return -1;
        }
        i += 4;
      } else if (e !== QUOTE && e !== BACKSLASH && e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) {
        return -1;
      }
    } else if (!(c >= 0x20)) {
      // A control character, or the end of the text (NaN).
      return -1;
    }
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The index just past the number at `i`, or -1 (JSON's grammar: no `+`, `.5`, `01`, `1.`). */
function scanNumber(text: string, i: number): number {
  let c = text.charCodeAt(i);
  if (c === 0x2d) c = text.charCodeAt(++i);
  if (c === 0x30) c = text.charCodeAt(++i);
  else if (c >= 0x31 && c <= 0x39) {
    do c = text.charCodeAt(++i);
    while (isDigit(c));
  } else return -1;
  if (c === 0x2e) {
    c = text.charCodeAt(++i);
    if (!isDigit(c)) return -1;
    do c = text.charCodeAt(++i);
    while (isDigit(c));
  }
  if (c === 0x65 || c === 0x45) {
    c = text.charCodeAt(++i);
    if (c === 0x2b || c === 0x2d) c = text.charCodeAt(++i);
    if (!isDigit(c)) return -1;
    do c = text.charCodeAt(++i);
    while (isDigit(c));
  }
  return i;
}

/** From a member's key at `i` to the start of its value, or -1. */
function memberValue(text: string, i: number): number {
  if (text.charCodeAt(i) !== QUOTE) return -1;
  i = scanString(text, i);
  if (i < 0) return -1;
  i = skipSpace(text, i);
  return text.charCodeAt(i) === COLON ? skipSpace(text, i + 1) : -1;
}

/**
 * The index just past the JSON value at `i`, or -1. Iterative, so any nesting depth JSON.parse
 * takes (SPEC §9: a 10 000-deep array inside `data` is valid) costs no stack.
 */
function skipValue(text: string, i: number): number {
  let depth = 0;
  try {
    for (;;) {
      let c = text.charCodeAt(i);
      if (c === QUOTE) i = scanString(text, i);
      else if (c === OPEN_OBJECT) {
        i = skipSpace(text, i + 1);
        if (text.charCodeAt(i) === CLOSE_OBJECT) i++;
        else {
          containers[depth++] = 1;
          i = memberValue(text, i);
          if (i < 0) return -1;
          continue;
        }
      } else if (c === OPEN_ARRAY) {
        i = skipSpace(text, i + 1);
        if (text.charCodeAt(i) === CLOSE_ARRAY) i++;
        else {
          containers[depth++] = 0;
          continue;
        }
      } else if (c === 0x74) i = text.startsWith("true", i) ? i + 4 : -1;
      else if (c === 0x66) i = text.startsWith("false", i) ? i + 5 : -1;
      else if (c === 0x6e) i = text.startsWith("null", i) ? i + 4 : -1;
      else i = scanNumber(text, i);
      if (i < 0) return -1;
      // After a value: close what ends here, then step to the next element or member.
      for (;;) {
        if (depth === 0) return i;
        i = skipSpace(text, i);
        c = text.charCodeAt(i);
        const inObject = containers[depth - 1] === 1;
        if (c === COMMA) {
          i = skipSpace(text, i + 1);
          if (inObject) {
            i = memberValue(text, i);
            if (i < 0) return -1;
          }
          break;
        }
        if (c !== (inObject ? CLOSE_OBJECT : CLOSE_ARRAY)) return -1;
        depth--;
        i++;
      }
    }
  } finally {
    // A hostile frame may have grown the stack to hundreds of thousands; do not keep that.
    if (containers.length > 1024) containers.length = 0;
  }
}

/** The bit of a key written without escapes, read in place: no string is made for it. */
function knownKey(text: string, start: number, length: number): number {
  switch (length) {
    case 2:
      return text.charCodeAt(start) === 0x69 && text.charCodeAt(start + 1) === 0x64 ? ID : 0;
    case 3:
      return text.startsWith("log", start) ? LOG : 0;
    case 4:
      return text.startsWith("type", start) ? TYPE : text.startsWith("data", start) ? DATA : 0;
    case 9:
      return text.startsWith("sender_id", start) ? SENDER_ID : 0;
    case 11:
      return text.startsWith("receiver_id", start) ? RECEIVER_ID : 0;
    default:
      return 0;
  }
}

/** The bit of a decoded key name (one that was written with escapes). */
function knownName(name: string): number {
  return knownKey(name, 0, name.length);
}

/** Names of unknown keys seen so far; answers whether `name` was already among them. */
class OtherKeys {
  private list: string[] = [];
  private set: Set<string> | null = null;

  repeats(name: string): boolean {
    if (this.set) {
      if (this.set.has(name)) return true;
      this.set.add(name);
      return false;
    }
    if (this.list.includes(name)) return true;
    this.list.push(name);
    if (this.list.length > LINEAR_KEYS) this.set = new Set(this.list);
    return false;
  }
}

/**
 * Checks one text frame against SPEC §2. Answers the fields the relay reads, or why not.
 * Never throws.
 */
export function scanEnvelope(text: string): Scan {
  let i = skipSpace(text, 0);
  if (text.charCodeAt(i) !== OPEN_OBJECT) return NOT_AN_OBJECT;
  i = skipSpace(text, i + 1);

  let seen = 0;
  let others: OtherKeys | null = null;
  let repeated = false;
  let idTwice = false;
  let invalid = false;
  let identification = false;
  let type: string | undefined;
  let id: string | undefined;
  let receiverId: string | undefined;
  let senderId: string | undefined;
  let senderStart = -1;
  let senderEnd = -1;
  let dataStart = -1;
  let dataEnd = -1;
  let insertAt = -1;

  if (text.charCodeAt(i) !== CLOSE_OBJECT) {
    for (;;) {
      if (text.charCodeAt(i) !== QUOTE) return NOT_AN_OBJECT;
      const keyStart = i;
      i = scanString(text, i);
      if (i < 0) return NOT_AN_OBJECT;
      let key: number;
      if (escaped) {
        // Compared decoded (SPEC §2 r2): "sender\u005fid" is sender_id.
        const name = JSON.parse(text.slice(keyStart, i)) as string;
        key = knownName(name);
        if (key === 0 && (others ??= new OtherKeys()).repeats(name)) repeated = true;
      } else {
        key = knownKey(text, keyStart + 1, i - keyStart - 2);
        if (key === 0 && (others ??= new OtherKeys()).repeats(text.slice(keyStart + 1, i - 1))) repeated = true;
      }
      if (seen & key) {
        repeated = true;
        if (key === ID) idTwice = true;
      }
      seen |= key;
      i = skipSpace(text, i);
      if (text.charCodeAt(i) !== COLON) return NOT_AN_OBJECT;
      i = skipSpace(text, i + 1);
      const valueStart = i;

      if ((key & (TYPE | ID | RECEIVER_ID | SENDER_ID)) !== 0 && text.charCodeAt(i) === QUOTE) {
        i = scanString(text, i);
        if (i < 0) return NOT_AN_OBJECT;
        const value = escaped ? (JSON.parse(text.slice(valueStart, i)) as string) : text.slice(valueStart + 1, i - 1);
        if (key === TYPE) {
          type = value;
          if (value === "identification") identification = true;
        } else if (key === ID) {
          id = value;
          if (value.length > MAX_ID_LENGTH) invalid = true;
        } else if (key === RECEIVER_ID) {
          receiverId = value;
        } else {
          senderId = value;
          senderStart = valueStart;
          senderEnd = i;
        }
      } else {
        // Any other value of a string field, or `data` that is not an object, breaks a rule;
        // the rest of the text is still checked, since valid JSON gets its id echoed.
        if (key & (TYPE | ID | RECEIVER_ID | SENDER_ID)) invalid = true;
        if (key === DATA) {
          if (text.charCodeAt(i) !== OPEN_OBJECT) invalid = true;
          dataStart = valueStart;
        }
        i = skipValue(text, i);
        if (i < 0) return NOT_AN_OBJECT;
        if (key === DATA) dataEnd = i;
      }

      insertAt = i;
      i = skipSpace(text, i);
      const c = text.charCodeAt(i);
      if (c === CLOSE_OBJECT) break;
      if (c !== COMMA) return NOT_AN_OBJECT;
      i = skipSpace(text, i + 1);
    }
  }
  if (skipSpace(text, i + 1) !== text.length) return NOT_AN_OBJECT;

  if (repeated || invalid || type === undefined) {
    // An id written twice is no single request id; one that breaks the id rule is not echoed.
    const echo = id !== undefined && id.length <= MAX_ID_LENGTH && !idTwice ? id : undefined;
    return { ok: false, id: echo, identification };
  }
  return { ok: true, type, id, receiverId, senderId, senderStart, senderEnd, dataStart, dataEnd, insertAt };
}
