/**
 * Small pieces every workload's Predictor (workload.ts) shares: naming what a user passed in an error message, and
 * turning averaged probabilities [positions, classes] into per-position rows and their most likely class.
 */

/** What a value is, for an error message: "a number (3)", "a string", "null", "an array of 5", "an object". */
export function describeValue(x: unknown): string {
  if (x === null) return 'null';
  if (x === undefined) return 'undefined';
  if (Array.isArray(x)) return `an array of ${x.length}`;
  if (ArrayBuffer.isView(x)) return `a ${x.constructor.name} of ${(x as unknown as ArrayLike<number>).length}`;
  if (typeof x === 'number') return `a number (${x})`;
  if (typeof x === 'string') return `a string (${JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x)})`;
  return typeof x === 'object' ? 'an object' : `a ${typeof x}`;
}

/** An array of numbers or a typed array (not a string, not an object with a length). */
export const isNumbers = (x: unknown): x is ArrayLike<number> =>
  (ArrayBuffer.isView(x) && !(x instanceof DataView)) || (Array.isArray(x) && (x.length === 0 || typeof x[0] === 'number'));

/** Each position's probabilities as a row, and the class of the largest (the lowest class on a tie). */
export function classAnswer(probs: Float32Array, classes: number): { probs: number[][]; classes: number[] } {
  const rows: number[][] = [];
  const top: number[] = [];
  for (let p = 0; p * classes < probs.length; p++) {
    const row = Array.from(probs.subarray(p * classes, (p + 1) * classes));
    let best = 0;
    for (let c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
    rows.push(row);
    top.push(best);
  }
  return { probs: rows, classes: top };
}
