// The magnification cells are cropped at. One slide, one magnification: a field whose red cells
// are read far from its slide's size is flagged, in the page and the report, and re-analysed at
// the slide's size with one click. A single-cell image is cropped by a diameter the user sets.
// A cell blurred beyond the calibration cells is flagged by the focus gate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useServer, withApp, bccd, pbc, foreignRequests } from './support.mjs';
import { blurredPng } from './fixtures.mjs';

const server = useServer();

test('a field read off its slide\'s red-cell size is flagged and re-analysed at the slide\'s', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    // BCCD field 1's red cells lie in clumps and read about 48 px; fields 0 and 12 read about
    // 86 and 73 (`cytolens detect-eval --verbose`).
    const names = ['BloodImage_00000.jpg', 'BloodImage_00001.jpg', 'BloodImage_00012.jpg'];
    const entry = (n) => page.getByTestId('entry').filter({ has: page.locator('h2', { hasText: n }) });
    const done = () => page.waitForFunction((n) => {
      const all = [...document.querySelectorAll('[data-testid=progress-text]')];
      return all.length === n && all.every((p) => /^done:/.test(p.textContent));
    }, names.length, { timeout: 240_000 });
    // Two fields are not yet a slide's size: no warning.
    await app.openFiles(names.slice(0, 2).map((n) => join(bccd, n)));
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=progress-text]')]
      .filter((p) => /^done:/.test(p.textContent)).length === 2, null, { timeout: 240_000 });
    assert.equal(await page.getByTestId('scale-warning').count(), 0);
    await app.openFiles([join(bccd, names[2])]);
    await done();
    // The third field makes the slide's size, the median of three: field 1 is flagged, alone.
    await page.getByTestId('scale-warning').first().waitFor();
    assert.equal(await page.getByTestId('scale-warning').count(), 1);
    const warning = entry(names[1]).getByTestId('scale-warning');
    const text = await warning.textContent();
    const m = /^Red cells sized (\d+) px here, (\d+) % smaller than on this slide \((\d+) px, the median of 3 fields\)/.exec(text);
    assert.ok(m, text);
    const [own, slide] = [Number(m[1]), Number(m[3])];
    assert.ok(own < 0.8 * slide, `${own} px against ${slide}`);
    assert.match(await entry(names[2]).getByTestId('scale').textContent(), new RegExp(`Red-cell diameter ${slide} px`), 'the median is field 12\'s');
    // The report says it too, under that field.
    await page.getByTestId('open-report').click();
    const report = page.getByTestId('report');
    assert.equal(await report.getByTestId('report-scale-warning').count(), 1);
    assert.match(await report.getByTestId('report-scale-warning').textContent(), new RegExp(`^Red cells sized ${own} px here`));
    await page.getByTestId('report-close').click();
    // One click re-analyses the field at the slide's size: the warning goes, the size is the
    // slide's, and the cells are classified again.
    await warning.getByTestId('scale-use-slide').click();
    await page.waitForFunction(({ n, slide }) => {
      const e = [...document.querySelectorAll('[data-testid=entry]')].find((x) => x.querySelector('h2').textContent === n);
      return e && /^done: [1-9]/.test(e.querySelector('[data-testid=progress-text]').textContent)
        && new RegExp(`Red-cell diameter ${slide} px`).test(e.querySelector('[data-testid=scale]').textContent);
    }, { n: names[1], slide }, { timeout: 180_000 });
    assert.equal(await page.getByTestId('scale-warning').count(), 0);
    await page.getByTestId('open-report').click();
    assert.equal(await page.getByTestId('report').getByTestId('report-scale-warning').count(), 0);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('a single-cell image is classified as framed unless the red-cell diameter is set', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    // A PBC original: one centred cell, red cells about 73 px across (0.203 of its side).
    await app.openFiles([join(pbc, 'original/neutrophil/BNE_186122.jpg')]);
    const finished = (d) => page.waitForFunction((d) => /^done: 1 cells/.test(document.querySelector('[data-testid=progress-text]')?.textContent ?? '')
      && (d === null || new RegExp(`Red-cell diameter ${d} px`).test(document.querySelector('[data-testid=scale]')?.textContent ?? '')), d, { timeout: 120_000 });
    await finished(null);
    assert.match(await page.getByTestId('single-cell-scale').textContent(), /classified as it is framed/);
    // The cell panel says why the cell was triaged so: its confidence against the card's
    // auto-acceptance threshold, on the right side of it.
    await page.getByTestId('cell-box').first().click();
    const triage = await page.getByTestId('cell-triage').textContent();
    const why = await page.getByTestId('cell-triage-reason').textContent();
    const m = /^Why (auto|review): confidence (\d+\.\d+) %, (at or above|under) the (\d+\.\d+) %/.exec(why);
    assert.ok(m, why);
    assert.equal(m[1], triage);
    assert.equal(m[3], triage === 'auto' ? 'at or above' : 'under', why);
    assert.equal(Number(m[2]) >= Number(m[4]), triage === 'auto', why);
    assert.equal(await page.getByTestId('cell-focus-warning').count(), 0, 'a sharp cell passes the focus gate');
    assert.match(await page.getByTestId('cell-confidence').textContent(), /^\d+\.\d %$/);
    // The share of the crop that is nucleus (violet), read off the gallery's crop.
    const violet = () => page.getByTestId('gallery-crop').first().evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 2] - d[i + 1] > 45) n++;
      return n / (c.width * c.height);
    });
    const framed = await violet();
    assert.ok(framed > 0.02, `nucleus share ${framed}`);
    // Told the red cells are 110 px (the image magnified 1.5 times beyond the training
    // images'), the page crops the cell from a square 1.5 times wider: the nucleus shrinks to
    // about (73/110)^2 = 0.44 of its share.
    await page.getByTestId('scale-input').fill('110');
    await page.getByTestId('scale-apply').click();
    await finished(110);
    const set = await violet();
    assert.ok(set < 0.7 * framed && set > 0.25 * framed, `nucleus share ${set} against ${framed}`);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('a blurred cell is flagged by the focus gate and never auto-accepted', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    // The PBC original of the test above, blurred by the browser (a Gaussian of 10 px at
    // 360 px: about 3.5 px at the 128 px the model's crops are cut at).
    const blurred = await blurredPng(page, readFileSync(join(pbc, 'original/neutrophil/BNE_186122.jpg')), 10);
    await page.getByTestId('file-input').setInputFiles([{ name: 'blurred.png', mimeType: 'image/png', buffer: blurred }]);
    await page.getByTestId('progress-text').filter({ hasText: /^done: 1 cells/ }).waitFor({ timeout: 120_000 });
    await page.getByTestId('cell-box').first().click();
    assert.match(await page.getByTestId('cell-focus-warning').textContent(), /^This crop is blurrier than the cells the model was calibrated on \(sharpness -\d+\.\d\d\)/);
    const triage = await page.getByTestId('cell-triage').textContent();
    assert.notEqual(triage, 'auto');
    // Its confidence and the test split's figures of its class do not hold for a blurred cell
    // (the figures are loaded: the footer shows them).
    await page.getByTestId('model-facts').locator('summary').click();
    await page.getByTestId('model-facts-overall').waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('cell-confidence').textContent(), /^\d+\.\d % \(calibrated on sharper cells: not valid here\)$/);
    assert.equal(await page.getByTestId('cell-class-figures').count(), 0);
    const why = await page.getByTestId('cell-triage-reason').textContent();
    if (triage === 'review') {
      assert.match(why, /^Why review: sharpness -\d+\.\d+ under the focus gate's -5\.15: blurrier than 99\.9 % of the val cells/);
    }
    // The exports say so.
    const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
    const cell = JSON.parse(readFileSync(await dl.path(), 'utf8'))[0].cells[0];
    assert.equal(cell.out_of_focus, true);
    assert.ok(cell.sharpness < -5.15, `sharpness ${cell.sharpness}`);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});
