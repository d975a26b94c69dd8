import t from 'tap';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '../src/util/random.js';
import { encodeIdx, IdxError, MNIST_FILES, mnistDir, readIdx, readMnist } from '../src/workloads/image/idx.js';

type Test = Parameters<Parameters<typeof t.test>[0]>[0];

/** A small, valid MNIST set of seeded 4x3 images in a fresh temp folder: 6 for training, 4 for testing. */
function smallMnist(t: Test, seed = 1): string {
  const dir = t.testdir();
  const rng = new Random(seed);
  const write = (split: keyof typeof MNIST_FILES, count: number) => {
    const pixels = Array.from({ length: count * 12 }, () => rng.int(256));
    const labels = Array.from({ length: count }, () => rng.int(10));
    writeFileSync(join(dir, MNIST_FILES[split].images), encodeIdx([count, 4, 3], pixels));
    writeFileSync(join(dir, MNIST_FILES[split].labels), encodeIdx([count], labels));
  };
  write('train', 6);
  write('test', 4);
  return dir;
}

t.test('the bundled MNIST files hold 60000 training and 10000 test digits of 28x28 pixels', (t) => {
  const mnist = readMnist(mnistDir());
  t.equal(mnist.rows, 28);
  t.equal(mnist.cols, 28);
  t.equal(mnist.train.count, 60000);
  t.equal(mnist.test.count, 10000);
  t.equal(mnist.train.images.length, 60000 * 28 * 28);
  t.equal(mnist.test.labels.length, 10000);
  t.equal(mnist.train.labels[0], 5, 'the first training digit is the well-known 5');
  t.ok(mnist.train.labels.every((l) => l <= 9) && mnist.test.labels.every((l) => l <= 9), 'every label is a digit');
  const seen = new Set(mnist.train.labels);
  t.equal(seen.size, 10, 'all ten digits occur');
  t.end();
});

t.test('readIdx returns the big-endian dimensions and the elements after the header', (t) => {
  const dir = t.testdir();
  const file = join(dir, 'cube');
  const data = Array.from({ length: 2 * 3 * 300 }, (_, i) => i % 251);
  writeFileSync(file, encodeIdx([2, 3, 300], data));
  const idx = readIdx(file, 3);
  t.same(idx.dims, [2, 3, 300], 'a size above 255 needs more than its low byte');
  t.same([...idx.data], data);
  t.same(readIdx(file).dims, [2, 3, 300], 'any rank is read when none is asked for');
  t.end();
});

t.test('a smaller MNIST set in a folder reads as such, pixels and labels in file order', (t) => {
  const dir = smallMnist(t);
  const mnist = readMnist(dir);
  t.same([mnist.train.count, mnist.test.count, mnist.rows, mnist.cols], [6, 4, 4, 3]);
  const raw = readFileSync(join(dir, MNIST_FILES.test.images));
  t.same([...mnist.test.images], [...raw.subarray(16)]);
  t.same([...mnist.train.labels], [...readFileSync(join(dir, MNIST_FILES.train.labels)).subarray(8)]);
  t.end();
});

t.test('every kind of bad file is an IdxError that names the file and what is wrong with it', async (t) => {
  const { train, test } = MNIST_FILES;
  const edit = (name: string, change: (bytes: Buffer) => Uint8Array) => (dir: string) => {
    const path = join(dir, name);
    writeFileSync(path, change(readFileSync(path)));
  };
  const cases: [string, (dir: string) => void, RegExp][] = [
    ['missing', (dir) => rmSync(join(dir, train.labels)), /train-labels-idx1-ubyte: missing: no such file/],
    ['a folder', (dir) => {
      rmSync(join(dir, test.images));
      mkdirSync(join(dir, test.images));
    }, /t10k-images-idx3-ubyte: is a folder/],
    ['empty', edit(test.labels, () => new Uint8Array(0)), /t10k-labels-idx1-ubyte: empty file/],
    ['shorter than a magic number', edit(test.labels, () => new Uint8Array([0, 0])),
      /t10k-labels-idx1-ubyte: truncated: a 4-byte magic number expected, 2 bytes found/],
    ['wrong magic', edit(train.images, (b) => Buffer.concat([Buffer.from('GIF8'), b.subarray(4)])),
      /train-images-idx3-ubyte: not an IDX file: magic number 0x47494638, expected 0x00000803/],
    ['not unsigned bytes', edit(train.images, (b) => Buffer.concat([Buffer.from([0, 0, 0x0d, 3]), b.subarray(4)])),
      /train-images-idx3-ubyte: element type 0x0d is not unsigned bytes \(0x08\)/],
    ['labels where images belong', (dir) => writeFileSync(join(dir, train.images), readFileSync(join(dir, train.labels))),
      /train-images-idx3-ubyte: 1 dimension\(s\), expected 3: magic number 0x00000801, expected 0x00000803/],
    ['no dimensions', edit(train.labels, () => new Uint8Array([0, 0, 8, 0])), /train-labels-idx1-ubyte: no dimensions/],
    ['a cut header', edit(train.images, (b) => b.subarray(0, 10)),
      /train-images-idx3-ubyte: truncated: a header of 16 bytes expected, 10 found/],
    ['truncated', edit(train.images, (b) => b.subarray(0, 50)),
      /train-images-idx3-ubyte: truncated: 88 bytes expected, 50 found \(dimensions 6x4x3\)/],
    ['trailing bytes', edit(test.labels, (b) => Buffer.concat([b, Buffer.from([1, 2])])),
      /t10k-labels-idx1-ubyte: trailing bytes: 12 bytes expected, 14 found/],
    ['fewer labels than images', (dir) => writeFileSync(join(dir, train.labels), encodeIdx([5], [1, 2, 3, 4, 5])),
      /train-labels-idx1-ubyte: 5 labels for the 6 images of train-images-idx3-ubyte/],
    ['a label that is no digit', (dir) => writeFileSync(join(dir, test.labels), encodeIdx([4], [3, 9, 10, 0])),
      /t10k-labels-idx1-ubyte: label 10 at index 2 is not a digit 0-9/],
    ['test images of another size', (dir) => writeFileSync(join(dir, test.images), encodeIdx([4, 3, 4], new Uint8Array(48))),
      /t10k-images-idx3-ubyte: 3x4 images, expected 4x3 as in train-images-idx3-ubyte/],
    ['images without pixels', (dir) => writeFileSync(join(dir, train.images), encodeIdx([6, 0, 3], [])),
      /train-images-idx3-ubyte: images of 0x3 pixels hold nothing/],
  ];
  for (const [name, spoil, message] of cases) {
    t.test(name, (t) => {
      const dir = smallMnist(t);
      spoil(dir);
      t.throws(() => readMnist(dir), IdxError);
      t.throws(() => readMnist(dir), { message });
      t.end();
    });
  }
});
