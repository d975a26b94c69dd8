/** Seeded text for ingest tests: folders of files of made-up sentences, larger than the fixtures, the same on every machine. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Random } from '../../src/util/random.js';

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'sa', 'ti', 'vo', 'an', 'el', 'or', 'us', 'é', 'ø', 'qu', 'th'];

/**
 * Writes `files` text files of about `bytes` each (between half and one and a half times that) into `dir`, in
 * folders of four, and returns `dir`. Lines are sentences of words made of syllables, a few with accents, digits
 * or an emoji, so the text is UTF-8 of several byte widths.
 */
export function writeTextCorpus(dir: string, o: { files: number; bytes: number; seed: number }): string {
  const rng = new Random(o.seed);
  const words = Array.from({ length: 400 }, () => {
    let w = '';
    for (let n = 1 + rng.int(4); n > 0; n--) w += SYLLABLES[rng.int(SYLLABLES.length)];
    return w;
  });
  for (let f = 0; f < o.files; f++) {
    const folder = join(dir, `set-${String(Math.floor(f / 4)).padStart(2, '0')}`);
    mkdirSync(folder, { recursive: true });
    const size = Math.round(o.bytes * (0.5 + rng.float()));
    const lines: string[] = [];
    let bytes = 0;
    while (bytes < size) {
      const n = 4 + rng.int(14);
      const sentence = Array.from({ length: n }, () => words[Math.min(rng.int(words.length), rng.int(words.length))]);
      if (rng.int(8) === 0) sentence.push(String(rng.int(2000)));
      if (rng.int(40) === 0) sentence.push('😀');
      const line = `${sentence.join(' ')}.\n`;
      lines.push(line[0].toUpperCase() + line.slice(1));
      bytes += Buffer.byteLength(line);
    }
    writeFileSync(join(folder, `text-${String(f).padStart(3, '0')}.txt`), lines.join(''));
  }
  return dir;
}
