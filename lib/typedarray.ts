// What a value really is, for typed arrays: Proxies, detached buffers and arrays from other realms
// fool `instanceof` and `length`, so the checks ask the engine's internal slots instead.
import { constants as bufferConstants } from 'buffer';
import { limitText, rangeError } from './errors';

/** Most elements of one typed array this Node allows (V8's limit: 2^32 in Node 20). */
export const MAX_ELEMENTS: number = bufferConstants.MAX_LENGTH;

/** %TypedArray%.prototype[Symbol.toStringTag]: reads the [[TypedArrayName]] slot, never throws. */
const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)!
  .get as (this: unknown) => string | undefined;

/**
 * The class name of a real typed array ('Float32Array', 'Uint16Array', ...), whatever realm made
 * it; undefined for anything else, a Proxy around a typed array included (it has no such slot,
 * and native code cannot read its memory).
 */
export function typedArrayName(x: unknown): string | undefined {
  return typedArrayTag.call(x);
}

/**
 * True when the view's buffer was transferred away (postMessage, structuredClone with transfer):
 * its length reads 0. Node 20 has no ArrayBuffer.prototype.detached, but constructing a view on a
 * detached buffer throws, which tells it apart from a buffer that is merely empty.
 */
export function isDetached(view: ArrayBufferView): boolean {
  const buffer = view.buffer as ArrayBufferLike & { detached?: boolean };
  if (buffer.detached !== undefined) return buffer.detached;
  if (view.byteLength !== 0) return false;
  try {
    new Uint8Array(buffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

/**
 * `new Storage(count)`, refused in the documented form (a RangeError naming `param`) when the count
 * is beyond what Node allows in one typed array or the memory cannot be had, instead of V8's
 * "Invalid typed array length" / "Array buffer allocation failed".
 */
export function allocate<T>(Storage: new (count: number) => T, count: number, param: string, received: string): T {
  if (!(count <= MAX_ELEMENTS))
    throw rangeError(
      param,
      `a size of at most ${limitText(MAX_ELEMENTS)} elements (Node's typed array limit)`,
      `${received} (${count} elements)`,
    );
  try {
    return new Storage(count);
  } catch (err) {
    if (err instanceof RangeError)
      throw rangeError(param, 'a size whose array fits in memory', `${received} (${count} elements)`);
    throw err;
  }
}
