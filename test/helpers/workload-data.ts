/** Small real-format inputs for the click and image workloads, with a signal a model can learn. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeIdx, MNIST_FILES } from '../../src/workloads/image/idx.js';

/** Criteo rows whose label depends on an integer feature and a categorical, so a model can learn it. */
export function criteoFile(path: string, rows: number, seed: number): void {
  let s = seed;
  const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    const a = Math.floor(next() * 20);
    const cat = Math.floor(next() * 8);
    const label = (a > 10) !== (cat < 2) ? 1 : 0;
    const ints = Array.from({ length: 13 }, (_, k) => (k === 0 ? String(a) : k === 5 ? '' : String(Math.floor(next() * 100))));
    const cats = Array.from({ length: 26 }, (_, k) => (k === 0 ? (0x1000 + cat).toString(16).padStart(8, '0') : k === 3 ? '' : 'deadbeef'));
    lines.push([label, ...ints, ...cats].join('\t'));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** A small IDX set: digit d drawn as a bright band at row 2d, so the classes are separable. */
export function idxSet(dir: string, train: number, test: number): void {
  mkdirSync(dir, { recursive: true });
  const write = (files: { images: string; labels: string }, n: number, seed: number) => {
    const pixels = new Uint8Array(n * 28 * 28);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const d = (i * 7 + seed) % 10;
      labels[i] = d;
      for (let c = 0; c < 28; c++) pixels[i * 784 + (2 * d + 4) * 28 + c] = 200 + ((c * 13 + i) % 55);
    }
    writeFileSync(join(dir, files.images), encodeIdx([n, 28, 28], pixels));
    writeFileSync(join(dir, files.labels), encodeIdx([n], labels));
  };
  write(MNIST_FILES.train, train, 1);
  write(MNIST_FILES.test, test, 3);
}
