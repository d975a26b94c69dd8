import t from 'tap';
import { Random, deriveSeed, mix32 } from '../src/util/random.js';

const draw = (r: Random, n: number) => Array.from({ length: n }, () => r.uint32());

t.test('the same seed gives the same sequence, another seed another one', async (t) => {
  t.same(draw(new Random(42), 8), draw(new Random(42), 8));
  t.notSame(draw(new Random(42), 8), draw(new Random(43), 8));
  // splitmix32 reference values: state 0 + golden ratio, through the MurmurHash3 finaliser.
  t.equal(new Random(0).uint32(), mix32(0x9e3779b9));
});

t.test('the state saves as a number and resumes the same sequence', async (t) => {
  const a = new Random(7);
  draw(a, 5);
  const saved = a.state;
  t.equal(typeof JSON.parse(JSON.stringify(saved)), 'number');
  const rest = draw(a, 5);
  const b = new Random(0);
  b.state = saved;
  t.same(draw(b, 5), rest);
});

t.test('int stays in range and hits every value; float stays in [0, 1)', async (t) => {
  const r = new Random(1);
  const seen = new Array(7).fill(0);
  for (let i = 0; i < 7000; i++) seen[r.int(7)]++;
  t.ok(seen.every((n) => n > 800 && n < 1200), `counts ${seen}`);
  for (let i = 0; i < 1000; i++) {
    const f = r.float();
    if (f < 0 || f >= 1) t.fail(`float ${f}`);
  }
  t.equal(r.int(1), 0);
  t.ok(r.int(2 ** 32) < 2 ** 32);
  t.throws(() => r.int(0), RangeError);
  t.throws(() => r.int(2.5), RangeError);
});

t.test('shuffle is a seeded permutation', async (t) => {
  const a = new Random(3).shuffle(Array.from({ length: 50 }, (_, i) => i));
  t.same([...a].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i));
  t.same(new Random(3).shuffle(new Uint32Array(50).map((_, i) => i)), Uint32Array.from(a));
  t.notSame(a, Array.from({ length: 50 }, (_, i) => i));
});

t.test('deriveSeed depends on every part and its position', async (t) => {
  const seeds = new Set([
    deriveSeed(1, 0, 0), deriveSeed(1, 0, 1), deriveSeed(1, 1, 0), deriveSeed(2, 0, 0),
    deriveSeed(1, 0), deriveSeed(1), deriveSeed(1, 2 ** 40), deriveSeed(1, 2 ** 40 + 1),
  ]);
  t.equal(seeds.size, 8);
  t.equal(deriveSeed(5, 6), deriveSeed(5, 6));
  t.throws(() => deriveSeed(-1), RangeError);
  t.throws(() => deriveSeed(0.5), RangeError);
});
