/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core): a tiny run started through the API
 * draws live on its charts, ends, and the page shows a report and the server's error messages.
 */
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { createService } from '../src/serve/server.js';
import { fixtureCorpus } from './helpers/run.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'a-test-token-of-16+chars';
const STEPS = 60;
/** Long enough for a slow machine, short enough that a hang fails well within tap's file timeout. */
const WAIT = { timeout: 90_000 };

/*
 * Functions passed to page.evaluate / waitForFunction run in the page. The project's TypeScript has no DOM types, so
 * the little of the page these functions touch is declared here, for this file only.
 */
interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
}
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } };
}
interface PageImage {
  complete: boolean;
  naturalWidth: number;
}
declare const document: {
  body: PageElement;
  querySelector(selector: string): unknown;
  querySelectorAll(selector: string): ArrayLike<unknown>;
};
declare const localStorage: { getItem(key: string): string | null };

/** A small, real plot: two lines on axes, with an intrinsic size (so the browser gives it a naturalWidth). */
const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="180" viewBox="0 0 320 180">
  <rect width="320" height="180" fill="#fff"/>
  <path d="M40 150 H300 M40 150 V20" stroke="#555" fill="none"/>
  <polyline points="40,40 100,80 160,105 220,118 280,124" stroke="#2563eb" stroke-width="2" fill="none"/>
  <polyline points="40,45 100,90 160,112 220,126 280,130" stroke="#ea580c" stroke-width="2" fill="none"/>
  <text x="170" y="172" font-size="11" text-anchor="middle" font-family="sans-serif">step</text>
</svg>
`;

if (!existsSync(CHROMIUM)) {
  const reason = `${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`;
  if (process.env.CI) t.fail(reason);
  else t.plan(0, reason);
} else {
  t.test('the dashboard draws a live run, shows a report and the server’s error messages', async (t) => {
    const dir = t.testdir();
    const report = join(dir, 'results', 'churn', 'quick');
    mkdirSync(report, { recursive: true });
    writeFileSync(join(report, 'report.md'), '# Churn\n\nThe codistilled models disagree less between retrainings.\n\n| arm | churn |\n|---|---|\n| single | 0.061 |\n| codistilled | 0.034 |\n');
    writeFileSync(join(report, 'churn.svg'), SVG);

    const service = createService({ host: '127.0.0.1', port: 0, runs: join(dir, 'runs'), results: join(dir, 'results'), token: TOKEN, bodyLimit: 1_048_576, predictors: 2 });
    let browser: Browser | undefined;
    t.teardown(async () => {
      await browser?.close();
      await service.close();
    });
    const base = await service.listen();
    const corpus = await fixtureCorpus();

    // The browser is up before the run starts, so that the page opens while the run is still young.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));

    const started = await fetch(`${base}/api/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        preset: 'tiny',
        set: [`corpus.path=${corpus}`, 'backend=wasm', `steps=${STEPS}`, 'eval.every=10', 'checkpoint.every=20'],
        name: 'watched',
      }),
    });
    t.equal(started.status, 201, 'the run started');

    await page.goto(base);
    await page.waitForFunction(() => document.body.dataset.run === 'watched', undefined, WAIT);
    t.pass('the live run is selected by default');

    // Live: the training chart has points while the stream is open and the run is not done, then more.
    const live = await page.waitForFunction(
      () => {
        const n = Number((document.querySelector('[data-chart="train"]') as PageElement).dataset.points);
        return document.body.dataset.stream === 'open' && n >= 5 ? n : 0;
      },
      undefined,
      WAIT,
    );
    const first = (await live.jsonValue()) as number;
    t.ok(first < STEPS, `the chart drew ${first} steps while the run was live`);
    await page.waitForFunction((n) => Number((document.querySelector('[data-chart="train"]') as PageElement).dataset.points) > n, first, WAIT);
    t.pass('and more as they came');

    // The end of the run: the stream closes, every step is on the chart, and every evaluation.
    await page.waitForFunction(() => document.body.dataset.stream === 'ended', undefined, WAIT);
    const points = await page.evaluate(() =>
      Object.fromEntries(
        Array.from(document.querySelectorAll('[data-chart]') as ArrayLike<PageElement>, (e) => [e.dataset.chart, Number(e.dataset.points)]),
      ),
    );
    t.same(points, { train: STEPS, validation: STEPS / 10, staleness: STEPS, throughput: STEPS }, 'each chart has every x value');
    t.match(await page.textContent('#run-line'), /finished.*step 60 \/ 60.*wasm.*parameters.*validation \d\.\d+ \/ \d\.\d+, ensemble \d\.\d+ \(step 60\)/s, 'the header line');
    t.match(await page.textContent('[data-run="watched"]'), /watched.*finished.*60 \/ 60.*ensemble \d\.\d+/s, 'the runs list, refreshed at the end');

    // The training chart's canvas has lines on it: count the coloured (not grey, not empty) pixels.
    const coloured = await page.evaluate(() => {
      const canvas = document.querySelector('[data-chart="train"] canvas') as PageCanvas;
      const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] > 0 && Math.max(px[i], px[i + 1], px[i + 2]) - Math.min(px[i], px[i + 1], px[i + 2]) > 60) n++;
      }
      return n;
    });
    t.ok(coloured > 500, `the training loss lines are drawn (${coloured} coloured pixels)`);

    // A report: its plot loads, its markdown shows.
    await page.click('[data-report="churn/quick"]');
    await page.waitForFunction(
      () => {
        const img = document.querySelector('#report-plots img') as PageImage | null;
        return img !== null && img.complete && img.naturalWidth > 0;
      },
      undefined,
      WAIT,
    );
    t.pass('the report’s plot loaded');
    t.match(await page.textContent('#report-markdown'), /# Churn\n\nThe codistilled models disagree less/, 'its markdown, as text');

    // A wrong token: the server's 401 message in the status line.
    await page.fill('#token', 'not-the-right-token');
    await page.click('#resume');
    await page.waitForFunction(() => /the bearer token is wrong/.test((document.querySelector('#status') as PageElement).textContent ?? ''), undefined, WAIT);
    t.equal(await page.getAttribute('#status', 'data-kind'), 'error', 'shown as an error');
    t.equal(await page.evaluate(() => localStorage.getItem('codistill.token')), 'not-the-right-token', 'the token is kept in localStorage');

    // The page as it looks now, for people.
    const shot = join(dir, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.same([...readFileSync(shot).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'the screenshot is a PNG');

    t.same(pageErrors, [], 'no errors in the page');
  });
}
