// Browser benchmark (a script, not a test). (1) For each backend the page offers (CPU in WASM;
// WebGPU through Chromium's SwiftShader adapter): cells per second over the bundled sample
// smears opened one after the other, and the time from page load to the first diagnosis.
// (2) On the CPU: throughput over a batch of PBC test cells opened at once, with one compute
// worker and with the default pool (one per core, at most 4), so the gain of the pool is
// measured on this machine. (3) On the CPU: one large smear (a mosaic of nine BCCD fields), with
// one worker and with the default pool, whose idle workers share its cells; and two smears of
// unequal size opened at once. (4) The sizes of the wasm files and the weights.
// (5) With `--marks` (alone): the time from a click of "Add a missed cell" on a large smear to
// the added cell's box, five marks in a row, on a 4x4 mosaic of BCCD fields (2560x1920) as a
// PNG and as a JPEG: the first mark decodes the file, the next ones may not.
// Run after a build: `node tests/bench.mjs [batch size, default 48]` (or `cd tests && npm run bench`).
// `node tests/bench.mjs --pool TAG` runs (2) and (3) with the default pool only, each line
// starting with TAG: for A/B runs of two builds copied to dist/ in turn (docs/browser-bench.txt).
import { statSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execSync } from 'node:child_process';
import { serveDist, launch, AppPage, dist, pbc, bccd, mosaic } from './e2e/support.mjs';

if (process.argv.includes('--marks')) {
  const server = await serveDist();
  const fields = readdirSync(bccd).filter((f) => f.endsWith('.jpg')).sort().slice(0, 16).map((f) => join(bccd, f));
  for (const type of ['image/png', 'image/jpeg']) {
    const ctx = await launch();
    try {
      const page = await ctx.newPage();
      const app = new AppPage(page, server.url);
      await app.open();
      await app.backend();
      const buffer = await mosaic(page, fields, 4, type);
      await app.openFiles([{ name: `mosaic.${type.slice(6)}`, mimeType: type, buffer }]);
      await page.getByTestId('progress-text').filter({ hasText: /done:/ }).waitFor({ timeout: 600_000 });
      const overlay = page.getByTestId('overlay');
      const boxes = page.getByTestId('cell-box');
      const times = [];
      for (let i = 0; i < 5; i++) {
        const before = await boxes.count();
        const b = await overlay.boundingBox();
        // Tile i's centre, as a share of the drawn mosaic (2560x1920).
        const [x, y] = [((i % 4) * 640 + 320) / 2560, (Math.floor(i / 4) * 480 + 240) / 1920];
        await page.getByTestId('add-cell').click();
        const t0 = Date.now();
        await overlay.click({ position: { x: x * b.width, y: y * b.height } });
        await page.waitForFunction((n) => document.querySelectorAll('[data-testid=cell-box]').length > n, before, { timeout: 120_000 });
        times.push(Date.now() - t0);
      }
      console.log(`marks on a 2560x1920 ${type.slice(6).toUpperCase()} (${(buffer.length / 1e6).toFixed(1)} MB): ${times.map((t) => `${t} ms`).join(', ')}`);
    } finally {
      await ctx.close();
    }
  }
  await server.close();
  process.exit(0);
}

const poolAt = process.argv.indexOf('--pool');
const poolOnly = poolAt >= 0 ? process.argv[poolAt + 1] ?? 'pool' : null;
const queries = poolOnly ? [''] : ['?workers=1', ''];
const mb = (p) => (statSync(p).size / 1e6).toFixed(1) + ' MB';
for (const f of readdirSync(dist).filter((f) => f.endsWith('.wasm'))) console.log(`size ${f}: ${mb(join(dist, f))}`);
console.log(`size weights: ${mb(join(dist, 'model/cytolens-diffusion.bpk'))}`);

const server = await serveDist();
for (const webgpu of poolOnly ? [] : [false, true]) {
  const ctx = await launch({ webgpu });
  try {
    const page = await ctx.newPage();
    const app = new AppPage(page, server.url);
    const t0 = Date.now();
    await app.open();
    const backend = await app.backend();
    if (webgpu && backend !== 'webgpu') { console.log('webgpu: no adapter in this browser'); continue; }
    const samples = await page.getByTestId('sample').count();
    let first = null;
    const start = Date.now();
    for (let i = 0; i < samples; i++) {
      await page.getByTestId('sample').nth(i).click();
      if (first === null) {
        await page.getByTestId('cell-box').first().waitFor({ timeout: 300_000 });
        first = Date.now() - t0;
      }
      await page.waitForFunction((n) => {
        const all = document.querySelectorAll('[data-testid=progress-text]');
        return all.length === n && /done:|cancelled/.test(all[n - 1].textContent);
      }, i + 1, { timeout: 300_000 });
    }
    const secs = (Date.now() - start) / 1000;
    const cells = await page.getByTestId('cell-box').count();
    console.log(`${backend}, samples one by one: ${cells} cells in ${samples} smears, ${(cells / secs).toFixed(2)} cells/s (detection included); page load to first diagnosis ${(first / 1000).toFixed(2)} s; ${await app.backendLine().textContent()}`);
  } finally {
    await ctx.close();
  }
}

// A batch of single-cell images, the same classes in turn, opened at once.
const batch = poolOnly ? 48 : Number(process.argv[2] ?? 48);
const byClass = new Map();
for (const line of readFileSync(join(pbc, 'manifest.csv'), 'utf8').trim().split('\n').slice(1)) {
  const [path, label, , split] = line.split(',');
  if (split !== 'test') continue;
  if (!byClass.has(label)) byClass.set(label, []);
  byClass.get(label).push(join(pbc, '..', path));
}
const files = [];
for (let i = 0; files.length < batch; i++) for (const list of byClass.values()) if (files.length < batch && list[i]) files.push(list[i]);
/** Open `files` in a fresh page at `query`; print the cells per second until all are done. */
async function timed(label, query, files) {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const app = new AppPage(page, server.url + query);
    await app.open();
    await app.backend();
    const line = await app.backendLine().textContent();
    if (typeof files === 'function') files = await files(page);
    const start = Date.now();
    await app.openFiles(files);
    await page.waitForFunction((n) => {
      const all = [...document.querySelectorAll('[data-testid=progress-text]')];
      return all.length === n && all.every((p) => /done:|cancelled/.test(p.textContent));
    }, files.length, { timeout: 600_000 });
    const secs = (Date.now() - start) / 1000;
    const cells = await page.getByTestId('cell-box').count();
    const workers = new Set(await page.$$eval('[data-testid=progress]', (ps) => ps.map((p) => p.dataset.worker)));
    // Resident memory of every Chromium process (this browser is the only one running).
    const rss = execSync('ps -C chromium -o rss=', { encoding: 'utf8' }).trim().split(/\s+/).reduce((a, b) => a + Number(b), 0);
    const used = new Set([...workers].flatMap((w) => w.split(' ')));
    console.log(`${poolOnly ? `${poolOnly} ` : ''}cpu, ${label} (${query || 'default pool'}): ${cells} cells in ${secs.toFixed(1)} s, ${(cells / secs).toFixed(2)} cells/s over ${used.size} worker(s) (decoding and detection included); Chromium resident memory ${(rss / 1024).toFixed(0)} MB; ${line}`);
  } finally {
    await ctx.close();
  }
}
for (const query of queries) await timed(`batch of ${files.length} PBC test images opened at once`, query, files);

// One large smear: nine BCCD fields (five with two annotated white cells) as a 3x3 mosaic.
const fields = ['00374', '00313', '00249', '00195', '00193', '00000', '00001', '00012', '00022']
  .map((n) => join(bccd, `BloodImage_${n}.jpg`));
const smear = async (page) => [{ name: 'mosaic.png', mimeType: 'image/png', buffer: await mosaic(page, fields, 3) }];
for (const query of queries) await timed('one 1920x1440 smear of nine BCCD fields', query, smear);

// Two smears of unequal size opened at once (nine fields and four): the worker that ends the
// small one should help with the large one rather than sit idle.
const two = async (page) => [
  { name: 'mosaic9.png', mimeType: 'image/png', buffer: await mosaic(page, fields, 3) },
  { name: 'mosaic4.png', mimeType: 'image/png', buffer: await mosaic(page, fields.slice(0, 4), 2) },
];
for (const query of queries) await timed('two smears at once, of nine and of four BCCD fields', query, two);
await server.close();
