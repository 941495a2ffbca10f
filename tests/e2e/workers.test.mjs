// Several compute workers on the CPU: images are spread over them, the cells of a smear are
// shared in parts that whichever worker is free takes, the diagnoses do not depend on which
// worker (or how many) computed them, and cancelling one image stops that image only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useServer, launch, record, AppPage, bccd, pbc, foreignRequests, mosaic } from './support.mjs';

const server = useServer();

/** The first test-split image of each of the first `n` classes of the PBC manifest. */
function pbcTestImages(n) {
  const seen = new Map();
  for (const line of readFileSync(join(pbc, 'manifest.csv'), 'utf8').trim().split('\n').slice(1)) {
    const [path, label, , split] = line.split(',');
    if (split === 'test' && !seen.has(label)) seen.set(label, join(pbc, '..', path));
  }
  return [...seen.values()].slice(0, n);
}

/** Open the app at `query` in a fresh browser, run `body`, close the browser. */
async function withQuery(query, body) {
  const ctx = await launch();
  try {
    const page = await ctx.newPage();
    const rec = record(page);
    const app = new AppPage(page, server.url + query);
    await app.open();
    await body({ page, rec, app });
  } finally {
    await ctx.close();
  }
}

/** Wait until `n` entries have finished (done or cancelled). */
async function allFinished(page, n) {
  await page.waitForFunction((n) => {
    const all = [...document.querySelectorAll('[data-testid=progress-text]')];
    return all.length === n && all.every((p) => /done:|cancelled/.test(p.textContent));
  }, n, { timeout: 300_000 });
}

/** Open `files`, wait for every analysis, return the JSON export keyed by image name and the
 * worker index of each image. */
async function analyseAll(page, app, files) {
  await app.openFiles(files);
  await allFinished(page, files.length);
  const workers = await page.$$eval('[data-testid=entry]', (es) => es.map((e) => [
    e.querySelector('h2').textContent, e.querySelector('[data-testid=progress]').dataset.worker]));
  const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
  const docs = JSON.parse(readFileSync(await dl.path(), 'utf8'));
  // A cell's id holds the page's image number, which follows the order the files were read.
  const cells = (d) => d.cells.map(({ id, ...rest }) => rest);
  return { workers: new Map(workers), docs: new Map(docs.map((d) => [d.image, cells(d)])) };
}

test('on the CPU images are spread over several workers, with the diagnoses of one worker', async () => {
  const files = pbcTestImages(6);
  assert.equal(files.length, 6);
  let one;
  await withQuery('?workers=1', async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'cpu');
    assert.doesNotMatch(await app.backendLine().textContent(), /workers in parallel/);
    one = await analyseAll(page, app, files);
    assert.deepEqual(new Set(one.workers.values()), new Set(['0']));
    assert.deepEqual(rec.errors, []);
  });
  await withQuery('?workers=3', async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'cpu');
    assert.match(await app.backendLine().textContent(), /3 workers in parallel/);
    const three = await analyseAll(page, app, files);
    const used = new Set(three.workers.values());
    assert.ok(used.size >= 2, `only worker(s) ${[...used]} analysed the ${files.length} images`);
    assert.equal(three.docs.size, files.length);
    for (const [name, cells] of three.docs) {
      assert.equal(cells.length, 1, `${name}: one cell`);
      // Same seed, same backend: the very same numbers whichever worker computed them.
      assert.deepEqual(cells, one.docs.get(name), `${name} differs between 1 and 3 workers`);
    }
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('the cells of one smear are shared by the idle workers, with the diagnoses of one worker', async () => {
  // Six BCCD fields with two annotated white cells each, as one 1920x960 "smear".
  const fields = ['00374', '00313', '00249', '00195', '00193', '00000'].map((n) => join(bccd, `BloodImage_${n}.jpg`));
  let png;
  let one;
  await withQuery('?workers=1', async ({ page, rec, app }) => {
    await app.backend();
    png = { name: 'mosaic.png', mimeType: 'image/png', buffer: await mosaic(page, fields, 3) };
    one = await analyseAll(page, app, [png]);
    assert.deepEqual([...one.workers.values()], ['0']);
    assert.deepEqual(rec.errors, []);
  });
  const cells = one.docs.get('mosaic.png');
  assert.ok(cells.length >= 6, `only ${cells.length} white cells found in six fields`);
  await withQuery('?workers=3', async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'cpu');
    assert.match(await app.backendLine().textContent(), /3 workers in parallel/);
    const three = await analyseAll(page, app, [png]);
    const used = three.workers.get('mosaic.png').split(' ').sort();
    assert.deepEqual(used, ['0', '1', '2'], 'the two idle workers each classified a share');
    // The same cells in detection order, the very same numbers.
    assert.deepEqual(three.docs.get('mosaic.png'), cells);
    const text = await page.getByTestId('progress-text').textContent();
    assert.match(text, new RegExp(`^done: ${cells.length} cells`), text);
    // Cancelled once its cells are found (and shared), during the parts' first batch of cells
    // (a second or more), the smear stops on every worker: no part delivers a cell after it.
    await app.openFiles([{ ...png, name: 'mosaic-again.png' }]);
    const again = page.getByTestId('entry').filter({ has: page.locator('h2', { hasText: 'mosaic-again.png' }) });
    await again.getByTestId('progress-text').filter({ hasText: /^0 \/ \d+ cells/ }).waitFor({ timeout: 60_000 });
    await again.getByTestId('cancel').click();
    await allFinished(page, 2);
    assert.equal(await again.getByTestId('progress-text').textContent(), `cancelled after 0 of ${cells.length} cells`);
    // The workers are free: a new image is analysed, and the cancelled smear got no late cells.
    await app.openFiles(pbcTestImages(1));
    await allFinished(page, 3);
    assert.equal(await again.getByTestId('cell-box').count(), 0);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
  });
});

test('two smears opened at once: their parts go to whichever worker is free, with the diagnoses of one worker', async () => {
  const fields = ['00374', '00313', '00249', '00195', '00193', '00000', '00001', '00012', '00022'].map((n) => join(bccd, `BloodImage_${n}.jpg`));
  let pngs;
  let one;
  await withQuery('?workers=1', async ({ page, rec, app }) => {
    await app.backend();
    pngs = [
      { name: 'mosaic9.png', mimeType: 'image/png', buffer: await mosaic(page, fields, 3) },
      { name: 'mosaic4.png', mimeType: 'image/png', buffer: await mosaic(page, fields.slice(0, 4), 2) },
    ];
    one = await analyseAll(page, app, pngs);
    assert.deepEqual([...one.workers.values()], ['0', '0']);
    assert.deepEqual(rec.errors, []);
  });
  await withQuery('?workers=2', async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'cpu');
    assert.match(await app.backendLine().textContent(), /2 workers in parallel/);
    const two = await analyseAll(page, app, pngs);
    console.log(`# workers per smear: ${JSON.stringify([...two.workers])}`);
    for (const [name, cells] of one.docs) {
      assert.ok(cells.length >= 4, `${name}: only ${cells.length} white cells`);
      // Every cell once, in detection order, with the very same numbers.
      assert.deepEqual(two.docs.get(name), cells, `${name} differs between 1 and 2 workers`);
      const entry = page.getByTestId('entry').filter({ has: page.locator('h2', { hasText: name }) });
      assert.match(await entry.getByTestId('progress-text').textContent(), new RegExp(`^done: ${cells.length} cells`));
    }
    const used = new Set([...two.workers.values()].flatMap((w) => w.split(' ')));
    assert.deepEqual([...used].sort(), ['0', '1']);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
  });
});

test('the worker count follows the cores, and a bad ?workers= is reported', async () => {
  await withQuery('', async ({ page, app }) => {
    assert.equal(await app.backend(), 'cpu');
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const want = Math.min(Math.max(cores, 1), 4);
    const line = await app.backendLine().textContent();
    if (want > 1) assert.match(line, new RegExp(`${want} workers in parallel`));
    else assert.doesNotMatch(line, /workers in parallel/);
  });
  await withQuery('?workers=zero', async ({ page, app }) => {
    assert.equal(await app.backend(), 'cpu');
    const notice = await page.getByTestId('restore-notice').textContent();
    assert.match(notice, /workers=zero in the address is not a number from 1 to 16/);
  });
});

test('cancelling a queued image stops that image only; re-analysis waits for the end', async () => {
  await withQuery('?workers=1', async ({ page, rec, app }) => {
    await app.backend();
    // A large smear first (several seconds on one worker), so the last image surely still
    // waits when it is cancelled.
    const fields = ['00374', '00313', '00249', '00195', '00193', '00000'].map((n) => join(bccd, `BloodImage_${n}.jpg`));
    const names = ['mosaic.png', 'BloodImage_00001.jpg', 'BloodImage_00002.jpg'];
    const jpeg = (n) => ({ name: n, mimeType: 'image/jpeg', buffer: readFileSync(join(bccd, n)) });
    await app.openFiles([{ name: names[0], mimeType: 'image/png', buffer: await mosaic(page, fields, 3) }, jpeg(names[1]), jpeg(names[2])]);
    const entry = (n) => page.getByTestId('entry').filter({ has: page.locator('h2', { hasText: n }) });
    // The last image waits behind the others for the one worker: cancel it.
    await entry(names[2]).getByTestId('cancel').click({ timeout: 60_000 });
    // While an image is being analysed, its re-analysis is not offered.
    const running = entry(names[0]);
    if (!/done:/.test(await running.getByTestId('progress-text').textContent())) {
      assert.equal(await running.getByTestId('scale-apply').isDisabled(), true);
    }
    await allFinished(page, 3);
    for (const n of names.slice(0, 2)) {
      assert.match(await entry(n).getByTestId('progress-text').textContent(), /^done: [1-9]\d* cells/, n);
    }
    assert.match(await entry(names[2]).getByTestId('progress-text').textContent(), /^cancelled after 0 of 0 cells/);
    assert.equal(await entry(names[0]).getByTestId('scale-apply').isDisabled(), false);
    // The cancelled image can still be analysed afterwards.
    await entry(names[2]).getByTestId('scale-apply').click();
    await page.waitForFunction((n) => [...document.querySelectorAll('[data-testid=entry]')]
      .some((e) => e.querySelector('h2').textContent === n && /^done: [1-9]/.test(e.querySelector('[data-testid=progress-text]').textContent)),
    names[2], { timeout: 180_000 });
    assert.deepEqual(rec.errors, []);
  });
});

test('a compute worker that stops fails what it held, says so, and a new worker takes the next image', async () => {
  const files = pbcTestImages(2);
  await withQuery('?workers=1', async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'cpu');
    await app.selfTest();
    // The worker throws on its next message, uncaught, as after a panic or a lost GPU device.
    const [worker] = page.workers();
    await worker.evaluate(() => { self.onmessage = () => { throw new Error('injected fault'); }; });
    await app.openFiles([files[0]]);
    const error = page.getByTestId('file-error');
    await error.first().waitFor({ timeout: 60_000 });
    assert.match(await error.first().textContent(), /: the compute worker stopped \(.*injected fault\)/);
    assert.match(await page.getByTestId('restore-notice').textContent(),
      /the compute worker stopped \(.*injected fault\); a new worker was started in its place/);
    // The worker in its place decodes and analyses the next file, on the CPU.
    await app.openFiles([files[1]]);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=progress-text]')]
      .some((p) => /^done: 1 cells/.test(p.textContent)), null, { timeout: 120_000 });
    assert.equal(await page.getByTestId('cell-box').count(), 1);
    assert.equal(await error.count(), 1, 'only the file the stopped worker held failed');
    assert.equal(await app.backend(), 'cpu');
    assert.deepEqual(rec.errors.filter((e) => !/injected fault/.test(e)), []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('a file the stopped worker had not decoded yet is decoded by the new one, and analysed', async () => {
  const [held, pending] = pbcTestImages(2);
  const pendingName = pending.split('/').pop();
  await withQuery('?workers=2', async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'cpu');
    await app.selfTest();
    await page.waitForFunction(() => /2 workers in parallel/.test(document.querySelector('[data-testid=backend-line]')?.textContent ?? ''));
    // The first worker stops when it is asked to decode the second file, while it analyses the
    // first (the second's analysis goes to the other worker).
    for (const w of page.workers()) {
      await w.evaluate((name) => {
        const handler = self.onmessage;
        self.onmessage = (ev) => {
          const json = ev.data[0];
          if (json.includes('"type":"Decode"') && json.includes(name)) throw new Error('injected fault');
          return handler.call(self, ev);
        };
      }, pendingName);
    }
    await app.openFiles([held, pending]);
    await page.getByTestId('file-error').first().waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('file-error').count(), 1);
    assert.match(await page.getByTestId('file-error').textContent(), new RegExp(`^${held.split('/').pop()}: the compute worker stopped`));
    // The second file: decoded by the new worker (its canvas shown) and analysed.
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=progress-text]')]
      .some((p) => /^done: 1 cells/.test(p.textContent)), null, { timeout: 120_000 });
    const entry = page.locator('[data-testid=entry]', { hasText: pendingName });
    await entry.getByTestId('image-canvas').waitFor({ timeout: 60_000 });
    assert.equal(await entry.getByTestId('file-error').count(), 0);
    assert.deepEqual(rec.errors.filter((e) => !/injected fault/.test(e)), []);
  });
});
