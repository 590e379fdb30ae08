// The rule for every options argument, in one place (ops, tiles, device uploads).
import { typeError } from './errors';

/** Options objects must be plain objects (or undefined): not null, an array, a typed array or a function. */
export function checkOptions<T extends object>(options: unknown, param = 'options'): Partial<T> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null || Array.isArray(options) || ArrayBuffer.isView(options))
    throw typeError(param, 'an options object', options);
  return options as Partial<T>;
}
