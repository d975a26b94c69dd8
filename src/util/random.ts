/**
 * Seeded randomness for everything that must replay exactly: data order, initialisation seeds, splits.
 *
 * The generator is splitmix32 (a 32-bit Weyl sequence through the MurmurHash3 finaliser): one uint32 of state,
 * so its state saves into a checkpoint as a plain number and restores exactly. It is not for cryptography.
 * Derive independent streams with `deriveSeed(seed, ...labels)` rather than by adding small numbers to a seed:
 *
 *   const rng = new Random(deriveSeed(config.seed, group, epoch));
 *   rng.shuffle(shardIds);
 */

const GOLDEN = 0x9e3779b9;
const TWO_TO_MINUS_32 = 1 / 0x100000000;

/** The MurmurHash3 32-bit finaliser: a bijection on uint32 that spreads every input bit over the output. */
export function mix32(x: number): number {
  let z = x | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * A uint32 seed that depends on every part and on their order, e.g. `deriveSeed(seed, group, epoch)`.
 * Parts are non-negative integers below 2^53 (both 32-bit halves are mixed in).
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x6a09e667;
  for (const part of parts) {
    if (!Number.isSafeInteger(part) || part < 0) throw new RangeError(`deriveSeed: ${part} is not a non-negative integer`);
    h = mix32(h + GOLDEN + mix32(part >>> 0));
    h = mix32(h + GOLDEN + mix32(Math.floor(part / 0x100000000)));
  }
  return h;
}

/** A seeded splitmix32 generator. */
export class Random {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** The whole state (a uint32): `new Random(0).state = saved` resumes the same sequence. */
  get state(): number {
    return this.s;
  }

  set state(value: number) {
    this.s = value >>> 0;
  }

  /** A uniform uint32. */
  uint32(): number {
    this.s = (this.s + GOLDEN) >>> 0;
    return mix32(this.s);
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  float(): number {
    return this.uint32() / 0x100000000;
  }

  /** A uniform integer in [0, n), for 1 <= n <= 2^32, without bias. */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x100000000) || !Number.isInteger(n)) throw new RangeError(`Random.int: bad bound ${n}`);
    if (n <= 0x200000) {
      // Lemire's multiply-shift: x * n < 2^53 is exact for n <= 2^21; the high 32 bits are the result, and draws
      // whose low 32 bits fall below 2^32 mod n are rejected, which removes the bias (and rarely needs a division).
      // (Scaling by 2^-32 is exact, and avoids a slow floating-point modulo on the common path.)
      let m = this.uint32() * n;
      let high = Math.floor(m * TWO_TO_MINUS_32);
      let low = m - high * 0x100000000;
      if (low < n) {
        const threshold = 0x100000000 % n;
        while (low < threshold) {
          m = this.uint32() * n;
          high = Math.floor(m * TWO_TO_MINUS_32);
          low = m - high * 0x100000000;
        }
      }
      return high;
    }
    // Accept only draws below the largest multiple of n that fits in 2^32, so every residue is equally likely.
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.uint32();
      if (x < limit) return x % n;
    }
  }

  /** Shuffles in place (Fisher-Yates: every permutation equally likely) and returns the same array. */
  shuffle<A extends { length: number; [i: number]: unknown }>(a: A): A {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const x = a[i];
      a[i] = a[j];
      a[j] = x;
    }
    return a;
  }
}
