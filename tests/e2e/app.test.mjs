// The first version of the app: open an image, see it at its size, see the backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { useServer, withApp, bccd, pbc, root, foreignRequests } from './support.mjs';

const server = useServer();

test('opens a BCCD smear, shows it at its size, reports the CPU backend without WebGPU', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'cpu');
    assert.match(await app.backendLine().textContent(), /no WebGPU adapter/);
    await app.openFiles([join(bccd, 'BloodImage_00000.jpg')]);
    const canvas = app.canvases().first();
    await canvas.waitFor({ timeout: 60_000 });
    assert.equal(await canvas.getAttribute('width'), '640');
    assert.equal(await canvas.getAttribute('height'), '480');
    // The canvas really holds the decoded pixels (not a blank canvas).
    const nonBlank = await canvas.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let distinct = new Set();
      for (let i = 0; i < d.length; i += 4 * 997) distinct.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
      return distinct.size;
    });
    assert.ok(nonBlank > 50, `only ${nonBlank} distinct colours on the canvas`);
    await app.selfTest();
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('with a WebGPU adapter the page uses it, and CPU and WebGPU forward passes agree', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    assert.equal(await app.backend(), 'webgpu');
    const text = await app.selfTest();
    assert.match(text, /outputs agree/, text);
    const diff = Number(/max \|diff\| ([0-9.e+-]+)/.exec(text)?.[1]);
    assert.ok(diff <= 1e-4, `CPU/WebGPU difference ${diff}`);
    // The user can switch to the CPU.
    await page.getByTestId('switch-backend').click();
    assert.equal(await app.backend(), 'cpu');
    assert.deepEqual(rec.errors.filter((e) => !/WebGPU|powerPreference/i.test(e)), []);
    assert.deepEqual(rec.failed, []);
  }, { webgpu: true });
});

test('the model\'s measured figures: in the footer, on the selected cell\'s class and in the report', async () => {
  const sheet = JSON.parse(readFileSync(join(root, 'static/model/cytolens-diffusion.sheet.json'), 'utf8'));
  const card = JSON.parse(readFileSync(join(root, 'static/model/cytolens-diffusion.json'), 'utf8'));
  assert.equal(sheet.weights_sha256, card.weights_sha256, 'the shipped sheet measured the shipped weights');
  const pct = (x) => `${(100 * x).toFixed(1)} %`;
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    const facts = page.getByTestId('model-facts');
    await facts.locator('summary').click();
    await page.getByTestId('model-facts-overall').waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('model-facts-overall').textContent(), new RegExp(`^Balanced accuracy ${pct(sheet.balanced_accuracy)}, accuracy ${pct(sheet.accuracy)}`));
    const rows = page.getByTestId('model-facts-row');
    assert.equal(await rows.count(), sheet.classes.length);
    for (const [i, c] of sheet.classes.entries()) {
      assert.deepEqual(await rows.nth(i).locator('td').allTextContents(), [c.class, String(c.cells), pct(c.recall), c.precision === null ? '–' : pct(c.precision)]);
    }
    // A PBC cell: the panel gives the figures of the class the model called it.
    await app.openFiles([join(pbc, 'original/neutrophil/BNE_186122.jpg')]);
    const box = page.getByTestId('cell-box').first();
    await box.waitFor({ timeout: 120_000 });
    await box.click();
    const called = (await page.getByTestId('cell-title').textContent()).replace(/^Cell [0-9-]+: /, '');
    const f = sheet.classes.find((c) => c.class === called);
    assert.ok(f, `a class of the sheet: ${called}`);
    assert.equal(await page.getByTestId('cell-class-figures').textContent(),
      `On the test split, ${pct(f.precision)} of the cells it called ${called} were ${called}; it found ${pct(f.recall)} of the ${f.cells} ${called} cells.`);
    // The report names them too.
    await page.getByTestId('open-report').click();
    assert.match(await page.getByTestId('report-model-figures').textContent(), new RegExp(`\\(${sheet.cells} cells\\): balanced accuracy ${pct(sheet.balanced_accuracy)}`));
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('a sheet of figures measured on other weights is not shown as this model\'s', async () => {
  const sheet = JSON.parse(readFileSync(join(root, 'static/model/cytolens-diffusion.sheet.json'), 'utf8'));
  const other = { ...sheet, weights_sha256: '0'.repeat(64) };
  await withApp(server, async ({ page, app, ctx }) => {
    // On the context: the page's requests and its service worker's.
    await ctx.route('**/model/cytolens-diffusion.sheet.json', (route) =>
      route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(other) }));
    await page.reload();
    await app.backend();
    await page.getByTestId('model-facts').locator('summary').click();
    await page.waitForFunction(() => /measured other weights/.test(document.querySelector('[data-testid=model-facts-missing]')?.textContent ?? ''), null, { timeout: 60_000 });
    assert.match(await page.getByTestId('model-facts-missing').textContent(), /^The figures shipped measured other weights \(sha256 000000000000…\)/);
    assert.equal(await page.getByTestId('model-facts-row').count(), 0);
    await app.openFiles([join(pbc, 'original/neutrophil/BNE_186122.jpg')]);
    const box = page.getByTestId('cell-box').first();
    await box.waitFor({ timeout: 120_000 });
    await box.click();
    await page.getByTestId('cell-confidence').waitFor();
    assert.equal(await page.getByTestId('cell-class-figures').count(), 0, 'no class figures from other weights');
  });
});
