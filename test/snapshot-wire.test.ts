import t from 'tap';
import { pack, unpack } from 'msgpackr';
import {
  bodyChecksum,
  decodeSnapshot,
  decodeSnapshotHeader,
  encodeSnapshot,
  xxh32,
  SnapshotError,
  type NamedArray,
  type SnapshotInput,
} from '../src/store/index.js';

/** mulberry32: a seeded generator, so every run sees the same tensors. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

function sample(seed = 1, step = 1200): SnapshotInput {
  const r = rng(seed);
  const floats = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  const tensors: NamedArray[] = [
    { name: 'weights/embedding', shape: [7, 3], data: floats(21) }, // 84 bytes: the next tensor needs padding
    { name: 'weights/bias', shape: [3], data: floats(3) },
    { name: 'optimizer/step', shape: [], data: Int32Array.of(step) },
    { name: 'optimizer/empty', shape: [0, 4], data: new Float32Array(0) },
    { name: 'weights/out', shape: [5], data: floats(5) },
  ];
  return {
    header: {
      runId: 'run-a',
      group: 3,
      step,
      model: 'lm',
      createdAt: '2024-01-02T03:04:05.000Z',
      extra: { cursor: { shard: 12, offset: 4096 }, rng: [1, 2, 3, 4], config: { lr: 0.001, name: 'tiny' } },
    },
    tensors,
  };
}

const where = 'lmdb:/runs/x group 3 step 1200';

t.test('a snapshot survives encode and decode exactly', async (t) => {
  const s = sample();
  const bytes = encodeSnapshot(s);
  const d = decodeSnapshot(bytes, where);
  t.match(d.header, { format: 'codistill-snapshot', version: 1, runId: 'run-a', group: 3, step: 1200, model: 'lm' });
  t.same(d.header.extra, s.header.extra);
  t.equal(d.header.createdAt, '2024-01-02T03:04:05.000Z');
  t.equal(d.tensors.length, s.tensors.length);
  for (let i = 0; i < s.tensors.length; i++) {
    const [a, b] = [s.tensors[i], d.tensors[i]];
    t.equal(b.name, a.name);
    t.same(b.shape, a.shape);
    t.equal(b.data.constructor, a.data.constructor, `${a.name} keeps its dtype`);
    t.same(Array.from(b.data), Array.from(a.data), `${a.name} keeps its values bit for bit`);
    t.equal(b.data.byteOffset % 8, 0, `${a.name} is 8-aligned`);
    t.equal(b.data.buffer, bytes.buffer, `${a.name} views the record without a copy`);
  }
});

t.test('encoding is deterministic: a decoded snapshot re-encodes to the same bytes', async (t) => {
  const bytes = encodeSnapshot(sample());
  t.same(Buffer.from(encodeSnapshot(decodeSnapshot(bytes))), Buffer.from(bytes));
  t.same(Buffer.from(encodeSnapshot(sample())), Buffer.from(bytes));
});

t.test('steps far beyond 2^32 and a snapshot without tensors round-trip', async (t) => {
  const big = sample(2, 1e12);
  t.equal(decodeSnapshot(encodeSnapshot(big)).header.step, 1e12);
  const empty = decodeSnapshot(encodeSnapshot({ header: { runId: 'r', group: 0, step: 0, model: 'lm' }, tensors: [] }));
  t.same(empty.tensors, []);
  t.same(empty.header.extra, {});
  t.ok(Date.parse(empty.header.createdAt) > 0, 'createdAt defaults to now');
});

t.test('any msgpack reader opens the record: [header, header check, padding, body]', async (t) => {
  const bytes = encodeSnapshot(sample());
  const [header, check, pad, body] = unpack(bytes) as [Record<string, unknown>, number, Uint8Array, Uint8Array];
  t.equal(header.step, 1200);
  t.type(check, 'number');
  t.ok(pad.length < 8);
  t.equal(body.byteOffset % 8, 0, 'the body starts 8-aligned in the record');
  t.equal(bodyChecksum(body), header.checksum);
});

t.test('a record at an unaligned offset is copied once into an aligned buffer', async (t) => {
  const bytes = encodeSnapshot(sample());
  const shifted = new Uint8Array(bytes.length + 3).subarray(3);
  shifted.set(bytes);
  const d = decodeSnapshot(shifted);
  for (const x of d.tensors) t.equal(x.data.byteOffset % 8, 0, `${x.name} is aligned`);
  t.not(d.tensors[0].data.buffer, shifted.buffer);
  t.same(Array.from(d.tensors[0].data), Array.from(sample().tensors[0].data));
});

t.test('a header alone is read from the first bytes', async (t) => {
  const bytes = encodeSnapshot(sample());
  const h = decodeSnapshotHeader(bytes.subarray(0, bytes.length - 40), where);
  t.equal(h.checksum, decodeSnapshot(bytes).header.checksum);
});

t.test('a flipped body byte fails the checksum, naming where the record came from', async (t) => {
  const bytes = encodeSnapshot(sample());
  bytes[bytes.length - 10] ^= 0x01;
  t.throws(() => decodeSnapshot(bytes, where), {
    name: 'SnapshotError',
    kind: 'corrupt',
    message: /^lmdb:\/runs\/x group 3 step 1200: body checksum .* does not match/,
  });
});

t.test('a flipped bit anywhere in the record is caught', async (t) => {
  const bytes = encodeSnapshot(sample());
  let caught = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const damaged = Uint8Array.from(bytes);
      damaged[i] ^= bit;
      try {
        decodeSnapshot(damaged, where);
        t.fail(`flipping bit ${bit} of byte ${i} went unnoticed`);
      } catch (e) {
        if (e instanceof SnapshotError) caught++;
        else t.fail(`byte ${i}: ${String(e)} is not a SnapshotError`);
      }
    }
  }
  t.equal(caught, bytes.length * 2);
});

t.test('a record cut short anywhere is reported as truncated', async (t) => {
  const bytes = encodeSnapshot(sample());
  for (let n = 0; n < bytes.length; n++) {
    try {
      decodeSnapshot(bytes.subarray(0, n), where);
      t.fail(`a record cut to ${n} bytes decoded`);
    } catch (e) {
      if (!(e instanceof SnapshotError && e.kind === 'truncated' && e.message.startsWith(where))) {
        t.fail(`cut to ${n} bytes: ${String(e)}`);
      }
    }
  }
  t.throws(() => decodeSnapshot(Buffer.concat([bytes, Buffer.of(0)]), where), { kind: 'corrupt', message: /stray bytes/ });
});

t.test('bytes of another kind or another format version are refused clearly', async (t) => {
  t.throws(() => decodeSnapshot(Buffer.from('{"format":"codistill-snapshot"}'), where), {
    kind: 'foreign',
    message: /^lmdb:\/runs\/x group 3 step 1200: not a codistill snapshot/,
  });
  const corpusMeta = pack([{ format: 'codistill-corpus', version: 1 }, 0]);
  t.throws(() => decodeSnapshot(corpusMeta), { name: 'SnapshotError', kind: 'foreign' });
  t.throws(() => decodeSnapshot(pack([1, 2, 3, 4])), { name: 'SnapshotError', kind: 'foreign' });
  const [header] = unpack(encodeSnapshot(sample())) as [Record<string, unknown>];
  const future = Buffer.concat([Buffer.of(0x94), pack({ ...header, version: 2 }), Buffer.from('whatever comes next')]);
  t.throws(() => decodeSnapshot(future, where), {
    kind: 'version',
    message: /format version 2; this codistill reads version 1/,
  });
});

t.test('tensors that cannot be a snapshot are refused at encode', async (t) => {
  const bad = (tensors: NamedArray[], group = 0) => () =>
    encodeSnapshot({ header: { runId: 'r', group, step: 1, model: 'lm' }, tensors });
  const w = (data: Float32Array, shape = [data.length]): NamedArray => ({ name: 'w', shape, data });
  t.throws(bad([w(new Float32Array(3), [2, 2])]), { kind: 'invalid', message: /shape \[2,2\] but 3 values/ });
  t.throws(bad([w(new Float32Array(1)), w(new Float32Array(1))]), {
    kind: 'invalid',
    message: /empty or repeated name/,
  });
  t.throws(bad([w(new Float64Array(1) as unknown as Float32Array)]), { message: /Float32Array/ });
  t.throws(bad([], -1), { kind: 'invalid', message: /non-negative integers/ });
});

t.test('the checksum is XXH32 (reference values), and distinct one-bit flips give distinct checksums', async (t) => {
  t.equal(xxh32(new Uint8Array(0)), 0x02cc5d05);
  t.equal(xxh32(Buffer.from('a')), 0x550d7456);
  t.equal(xxh32(Buffer.from('Nobody inspects the spammish repetition')), 0xe2293b2f);
  t.equal(xxh32(Buffer.from('_Nobody inspects the spammish repetition').subarray(1)), 0xe2293b2f, 'unaligned input');
  const body = new Uint8Array(8 * 9);
  const seen = new Set([bodyChecksum(body)]);
  for (let i = 0; i < body.length; i++) {
    body[i] ^= 0x10;
    seen.add(bodyChecksum(body));
    body[i] ^= 0x10;
  }
  t.equal(seen.size, body.length + 1);
});
