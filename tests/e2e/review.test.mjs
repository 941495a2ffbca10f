// The review workflow on a bundled sample smear, as a hematologist would use it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { useServer, withApp, root, foreignRequests } from './support.mjs';

const server = useServer();

/** White-cell boxes annotated for a BCCD field. */
function annotatedWbc(name) {
  const xml = readFileSync(join(root, '../shared/data/bccd/Annotations', name.replace('.jpg', '.xml')), 'utf8');
  return [...xml.matchAll(/<name>WBC<\/name>/g)].length;
}


test('analyse a sample smear, review a cell with a key, undo, sign off, and export JSON and CSV', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    const started = Date.now();
    await app.analyseSample(1);
    const boxes = page.getByTestId('cell-box');
    assert.equal(await boxes.count(), annotatedWbc('BloodImage_00001.jpg'), 'one box per annotated white cell');
    assert.match(await page.getByTestId('findings').textContent(), /1 white cells, \d+ red cells, \d+ platelets/);
    console.log(`# sample analysed in ${Date.now() - started} ms`);

    // Open the cell: crop, heatmaps, probabilities.
    await boxes.first().click();
    await page.getByTestId('cell-crop').waitFor();
    await page.getByTestId('cell-heatmap').waitFor();
    const shownClass = await boxes.first().getAttribute('data-class');
    const title = page.getByTestId('cell-title');
    assert.match(await page.getByTestId('cell-confidence').textContent(), /\d+\.\d %/);
    // BCCD is another lab's stain: the colour gate flags the cell, says why, and it is never
    // auto-accepted, however confident; until reviewed it is drawn and counted as "unusual
    // colour", not as the model's untrusted class, which the title still names.
    assert.match(await page.getByTestId('cell-colour-warning').textContent(), /unlike those of the cells the model was calibrated on/);
    assert.equal(await page.getByTestId('cell-triage').textContent(), 'anomaly');
    // Why: the gate's score against its threshold, from the model card.
    assert.match(await page.getByTestId('cell-triage-reason').textContent(), /^Why anomaly: colour score \d+\.\d+ above the colour gate's \d+\.\d+: its colours lie outside those of 99\.9 % of the val cells/);
    assert.equal(shownClass, 'unusual colour');
    assert.match(await page.getByTestId('cell-confidence').textContent(), /^\d+\.\d % \(calibrated on other colours: not valid here\)$/);
    assert.match(await page.getByTestId('cell-title').textContent(), /: unusual colour \(the model's untrusted guess: [a-z]+\)/);
    const field = page.locator('.entry');
    assert.equal(await field.locator('[data-testid=differential-row][data-class="unusual colour"]').count(), 1);
    assert.match(await page.getByTestId('queue-item').first().textContent(), /— unusual colour \(anomaly/);
    // No sign-off while a cell awaits review.
    await page.getByTestId('signoff-name').fill('Dr Test');
    assert.match(await page.getByTestId('signoff-blocked').textContent(), /^Not yet: 1 cell awaits review/);
    assert.equal(await page.getByTestId('signoff').isDisabled(), true);
    // Reclassify with key 5 (lymphocyte), the focus out of the name field first.
    await title.click();
    const want = 'lymphocyte';
    await page.keyboard.press('5');
    await page.getByTestId('reviewed-badge').waitFor();
    assert.equal(await boxes.first().getAttribute('data-class'), want);
    assert.equal(await field.locator(`[data-testid=differential-row][data-class=${want}]`).count(), 1);
    assert.equal(await field.locator('[data-testid=differential-row][data-class="unusual colour"]').count(), 0);
    // The differential: the one leukocyte is 100 %, its exact 95 % interval 2.5-100 %.
    const reviewedRow = field.locator(`[data-testid=differential-row][data-class=${want}]`);
    assert.deepEqual(await reviewedRow.locator('td').allTextContents(), [want, '1', '100.0', '2.5–100.0', '']);
    assert.match(await field.getByTestId('flags').textContent(), /^1 leukocyte counted, fewer than the routine 100/);
    // The smear's differential (one field) with the patient's leukocyte count: a bad count is
    // refused with a message; a good one adds absolute counts (10^9/L, with the interval).
    const smear = page.locator('.side [data-testid=slide-differential]');
    assert.equal(await smear.locator('h3').textContent(), 'Slide 1: 1 field');
    const wbc = page.getByTestId('wbc-input');
    await wbc.fill('abc');
    await wbc.press('Tab');
    assert.match(await page.getByTestId('wbc-error').textContent(), /"abc" is not a number/);
    assert.equal(await smear.getByTestId('differential-absolute').count(), 0);
    await wbc.fill('8');
    await wbc.press('Tab');
    await smear.getByTestId('differential-absolute').first().waitFor();
    assert.equal(await page.getByTestId('wbc-error').count(), 0);
    assert.equal(await smear.locator(`[data-testid=differential-row][data-class=${want}] [data-testid=differential-absolute]`).textContent(), '8.00 (0.20–8.00)');
    assert.equal(await field.getByTestId('differential-absolute').count(), 0, 'a field alone has no absolute counts');

    // Gallery groups the crops by final class; the reviewed cell left the review queue.
    await page.locator(`[data-testid=gallery-group][data-class=${want}]`).waitFor();
    assert.equal(await page.locator('[data-testid=queue-item]').count(), 0, 'no unreviewed cell waits');

    // Reload: the session (image, diagnoses, review edit) comes back from IndexedDB.
    await page.reload();
    await app.backend();
    await page.getByTestId('cell-box').first().waitFor({ timeout: 60_000 });
    assert.equal(await boxes.count(), annotatedWbc('BloodImage_00001.jpg'));
    assert.equal(await boxes.first().getAttribute('data-class'), want, 'the review edit survived the reload');
    assert.equal(await page.getByTestId('wbc-input').inputValue(), '8', 'and the leukocyte count');
    await boxes.first().click();
    await page.getByTestId('reviewed-badge').waitFor();
    await page.getByTestId('cell-crop').waitFor();

    // Undo restores the model's answer (the undo history survived the reload too); review again.
    await page.keyboard.press('u');
    await page.waitForFunction(() => !document.querySelector('[data-testid=reviewed-badge]'));
    assert.equal(await boxes.first().getAttribute('data-class'), shownClass);
    // This time a reviewer is named (a bad name first: refused, with the reason), and the
    // review records who gave it.
    const reviewer = page.getByTestId('reviewer-name');
    await reviewer.fill('x'.repeat(61));
    assert.match(await page.getByTestId('reviewer-refused').textContent(), /at most 60 characters; this one has 61/);
    await reviewer.fill('Trainee B ');
    assert.equal(await page.getByTestId('reviewer-refused').count(), 0);
    assert.equal(await reviewer.inputValue(), 'Trainee B ', 'the space being typed stays');
    await title.click();
    await page.keyboard.press('5');
    await page.getByTestId('reviewed-badge').waitFor();
    assert.match(await page.getByTestId('reviewed-badge').textContent(), /^ \(reviewed by Trainee B; model said [a-z]+\)$/);

    // Sign-off records who and when; the smear's reviews are final then. Its name is the
    // reviewer's until another is typed.
    assert.equal(await page.getByTestId('signoff-name').inputValue(), 'Trainee B');
    await page.getByTestId('signoff-name').fill('Dr Test');
    assert.equal(await page.getByTestId('signoff-blocked').count(), 0);
    await page.getByTestId('signoff').click();
    assert.match(await page.getByTestId('signed').textContent(), /Signed off by Dr Test at \d{4}-\d\d-\d\dT/);
    await title.click();
    await page.keyboard.press('6');
    await page.keyboard.press('u');
    await page.getByTestId('cell-locked').waitFor();
    assert.equal(await boxes.first().getAttribute('data-class'), want, 'no review or undo after the sign-off');
    assert.equal(await page.getByTestId('accept').isDisabled(), true);

    // JSON export: schema of the issue, the review kept apart from the model's answer.
    const [jsonDl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
    const docs = JSON.parse(readFileSync(await jsonDl.path(), 'utf8'));
    assert.equal(docs.length, 1);
    const doc = docs[0];
    for (const k of ['image', 'width', 'height', 'backend', 'model', 'scale_um_per_px', 'rbc_count', 'platelet_count', 'cells', 'differential', 'leukocyte_differential', 'slide', 'wbc_count']) assert.ok(k in doc, `missing ${k}`);
    assert.equal(doc.width, 640);
    assert.equal(doc.backend, 'cpu');
    assert.match(doc.model.sha256, /^[0-9a-f]{64}$/);
    const cell = doc.cells[0];
    for (const k of ['id', 'bbox', 'class', 'probs', 'confidence', 'uncertainty', 'anomaly', 'triage', 'reviewed_class', 'evals', 'unusual_colour', 'colour', 'counted_as']) assert.ok(k in cell, `cell missing ${k}`);
    assert.equal(cell.counted_as, want, 'counted as the reviewer said');
    assert.equal(cell.unusual_colour, true);
    assert.equal(cell.triage, 'anomaly');
    assert.match(cell.triage_reason, /^colour score /);
    assert.ok(Object.keys(cell.probs).includes(cell.class), `the model's class ${cell.class} is one of its classes`);
    assert.equal(cell.reviewed_class, want);
    // When it was reviewed (the last review, after the undo), before the sign-off.
    assert.match(cell.reviewed_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(cell.reviewed_at <= doc.signed_off.at, `${cell.reviewed_at} after the sign-off ${doc.signed_off.at}`);
    assert.equal(cell.reviewed_by, 'Trainee B', 'who reviewed it, beside who signed off');
    assert.ok(Math.abs(Object.values(cell.probs).reduce((a, b) => a + b, 0) - 1) < 1e-3);
    assert.ok(['auto', 'review', 'anomaly'].includes(cell.triage));
    assert.equal(doc.differential[want], 1);
    assert.equal(doc.leukocyte_differential.leukocytes, 1);
    assert.equal(doc.wbc_count, 8, 'the leukocyte count given');
    assert.equal(doc.slide, 'Slide 1');
    const share = doc.leukocyte_differential.classes.find((c) => c.class === want);
    assert.equal(share.percent, 100);
    assert.ok(Math.abs(share.interval[0] - 2.5) < 1e-6 && share.interval[1] === 100, `interval ${share.interval}`);
    assert.equal(doc.signed_off.by, 'Dr Test');

    // CSV: a header and one row per cell, columns matching the cell fields.
    const [csvDl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-csv').click()]);
    const lines = readFileSync(await csvDl.path(), 'utf8').trim().split('\n');
    assert.equal(lines.length, 1 + doc.cells.length);
    assert.match(lines[0], /^image,id,x0,y0,x1,y1,class,confidence,uncertainty,anomaly,triage,reviewed_class,evals,p_basophil/);
    assert.ok(lines[1].includes(`,${want},`));
    assert.match(lines[0], /,unusual_colour,counted_as,slide,added,triage_reason,reviewed_at,reviewed_by,out_of_focus$/);
    // The reason holds commas: quoted; the review's time and reviewer last.
    assert.match(lines[1], new RegExp(`,1,${want},Slide 1,0,"colour score [^"]+",${cell.reviewed_at.replace(/[.]/g, '\\.')},Trainee B,${cell.out_of_focus ? 1 : 0}$`));

    // The sign-off survives a reload.
    await page.reload();
    await app.backend();
    await page.getByTestId('signed').waitFor({ timeout: 60_000 });
    assert.match(await page.getByTestId('signed').textContent(), /Signed off by Dr Test at /);
    assert.equal(await boxes.first().getAttribute('data-class'), want);
    assert.equal(await page.getByTestId('reviewer-name').inputValue(), 'Trainee B', 'the reviewer is kept with the session');

    // Overriding the red-cell diameter re-analyses the smear at that scale.
    await page.getByTestId('scale-input').fill('95');
    await page.getByTestId('scale-apply').click();
    await page.waitForFunction(() => /done:/.test(document.querySelector('[data-testid=progress-text]')?.textContent ?? '')
      && /Red-cell diameter 95 px/.test(document.querySelector('[data-testid=scale]')?.textContent ?? ''), null, { timeout: 120_000 });
    assert.equal(await boxes.count(), annotatedWbc('BloodImage_00001.jpg'));
    assert.equal(await page.getByTestId('signed').count(), 0, 're-analysis cleared the sign-off');
    assert.match(await page.getByTestId('signoff-blocked').textContent(), /1 cell awaits review/);

    // Clear all asks first; accepted, it empties the page and the stored session.
    page.once('dialog', (d) => d.accept());
    await page.getByTestId('clear-all').click();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=entry]').length === 0);
    await page.reload();
    await app.backend();
    await page.waitForTimeout(1000);
    assert.equal(await page.getByTestId('entry').count(), 0, 'nothing restored after clear all');

    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('the progress bar counts cells and cancel stops the analysis', async () => {
  await withApp(server, async ({ page, app }) => {
    await app.backend();
    // Cancel the analysis running; the page says so.
    await page.getByTestId('sample').nth(3).click();
    await page.getByTestId('progress').first().waitFor();
    await page.getByTestId('cancel').first().click();
    await page.waitForFunction(() => /cancelled|done:/.test(document.querySelector('[data-testid=progress-text]')?.textContent ?? ''), null, { timeout: 120_000 });
    const text = await page.getByTestId('progress-text').first().textContent();
    assert.match(text, /cancelled after \d+ of \d+ cells|done: \d+ cells/);
    // A later analysis still runs to the end.
    await app.analyseSample(2);
    assert.match(await page.getByTestId('progress-text').last().textContent(), /done: \d+ cells, [0-9.]+ cells\/s/);
  });
});

test('the printable report holds the thumbnail, differential, flagged crops and the model, and prints alone', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    await app.analyseSample(0);
    // Its flagged cell confirmed (Enter), the smear can be signed off.
    await page.getByTestId('cell-box').first().click();
    await page.keyboard.press('Enter');
    await page.getByTestId('reviewed-badge').waitFor();
    await page.getByTestId('signoff-name').fill('Dr Report');
    await page.getByTestId('signoff').click();
    const flagged = await page.locator('[data-testid=cell-box]:not([data-triage=auto])').count();
    // The smear-level heatmap: each cell's per-pixel map drawn over its crop, under a slider.
    const heat = page.getByTestId('heat-overlay').first();
    const painted = await heat.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const alphas = new Set();
      let n = 0;
      for (let i = 3; i < d.length; i += 4) if (d[i] > 0) { n++; alphas.add(d[i]); }
      return { n, levels: alphas.size };
    });
    assert.ok(painted.n > 1000 && painted.levels > 10, `heat overlay ${JSON.stringify(painted)}`);
    await page.getByTestId('overlay-opacity').first().fill('0.2');
    assert.equal(await heat.evaluate((c) => c.style.opacity), '0.2');
    await page.getByTestId('open-report').click();
    const report = page.getByTestId('report');
    await report.waitFor();
    assert.match(await report.getByTestId('report-model').textContent(), /Model cytolens-diffusion version [\d.]+, weights sha256 [0-9a-f]{64}/);
    assert.match(await report.textContent(), /not a medical device/);
    const thumb = report.getByTestId('report-thumb');
    assert.equal(await thumb.getAttribute('width'), '640');
    const drawn = await thumb.evaluate((c) => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      const seen = new Set();
      for (let i = 0; i < d.length; i += 4 * 499) seen.add(d[i] * 65536 + d[i + 1] * 256 + d[i + 2]);
      return seen.size;
    });
    assert.ok(drawn > 50, `thumbnail has only ${drawn} colours`);
    assert.ok(await report.getByTestId('differential-row').count() >= 1);
    assert.match(await report.getByTestId('report-findings').textContent(), /\d+ white cells, \d+ red cells, \d+ platelets/);
    assert.match(await report.getByTestId('report-signoff').textContent(), /Signed off by Dr Report at/);
    assert.equal(await report.getByTestId('report-flagged-cell').count(), flagged);
    // Printed, only the report shows, and it renders to a PDF.
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.locator('main').evaluate((m) => getComputedStyle(m).display), 'none');
    assert.notEqual(await report.evaluate((r) => getComputedStyle(r).display), 'none');
    const pdf = await page.pdf({ format: 'A4' });
    assert.ok(pdf.length > 20_000 && pdf.subarray(0, 5).toString() === '%PDF-', `PDF of ${pdf.length} bytes`);
    await page.emulateMedia({ media: 'screen' });
    await report.getByTestId('report-close').click();
    await report.waitFor({ state: 'detached' });
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});

test('a key reviews the selected cell and moves on through the queue, Enter confirms the model\'s class; typing in a field reviews nothing', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    for (const i of [0, 1, 2]) await app.analyseSample(i);
    const queue = page.getByTestId('queue-item');
    const waiting = await queue.count();
    assert.ok(waiting >= 3, `BCCD cells all wait for review (${waiting})`);
    const title = page.getByTestId('cell-title');
    const cellId = async () => (await title.textContent()).match(/^Cell (\d+-\d+):/)[1];
    const queued = async () => Promise.all((await queue.all()).map(async (q) => (await q.textContent()).split(' ')[0]));
    const order = await queued();
    await queue.nth(1).click();
    assert.equal(await cellId(), order[1]);
    const guess1 = (await title.textContent()).match(/untrusted guess: (\w+)/)[1];

    // Typing a reviewer's name with digits and a 'u' in it changes no cell.
    const name = page.getByTestId('signoff-name').first();
    await name.click();
    await page.keyboard.type('Dr 5u 7');
    assert.equal(await name.inputValue(), 'Dr 5u 7');
    assert.equal(await queue.count(), waiting, 'no cell was reviewed by typing');
    assert.equal(await page.getByTestId('reviewed-badge').count(), 0);

    // Out of the field, a key reviews the cell and the next one in the queue is shown.
    await title.click();
    await page.keyboard.press('5');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=queue-item]').length === n, waiting - 1);
    assert.equal(await cellId(), order[2], 'the next cell of the queue');
    assert.equal(await page.getByTestId('reviewed-badge').count(), 0, 'and it is not reviewed yet');
    assert.deepEqual(await queued(), order.filter((_, k) => k !== 1));

    // Undo brings the reviewed cell back into the queue and shows it again.
    await page.keyboard.press('u');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=queue-item]').length === n, waiting);
    assert.equal(await cellId(), order[1]);
    assert.deepEqual(await queued(), order);

    // Enter, right after a click in the queue, confirms the model's class and moves on.
    await queue.nth(0).click();
    assert.equal(await cellId(), order[0]);
    await page.keyboard.press('Enter');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=queue-item]').length === n, waiting - 1);
    assert.equal(await cellId(), order[1]);
    assert.deepEqual(await queued(), order.slice(1));
    // The confirmed cell is now drawn as its model's class, no longer as "unusual colour".
    const confirmed = await page.locator('[data-testid=cell-box]:not([data-class="unusual colour"])').all();
    assert.equal(confirmed.length, 1);
    const probsOf = await page.locator('.prob-name').allTextContents();
    assert.ok(probsOf.includes(await confirmed[0].getAttribute('data-class')), 'a class of the model');
    await page.keyboard.press('u');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=queue-item]').length === n, waiting);
    assert.equal(await cellId(), order[0], 'the undo shows the cell it restored');
    assert.equal(await page.locator('[data-testid=cell-box]:not([data-class="unusual colour"])').count(), 0);

    // A review button leaves the focus on the page: Enter then confirms the next cell's class
    // rather than clicking that button again for it.
    const label = guess1 === 'lymphocyte' ? 'monocyte' : 'lymphocyte';
    await page.getByTestId('review-buttons').getByRole('button', { name: new RegExp(`^\\d ${label}$`) }).click();
    assert.equal(await cellId(), order[1]);
    await page.keyboard.press('Enter');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=queue-item]').length === n, waiting - 2);
    assert.equal(await page.locator(`[data-testid=cell-box][data-class=${label}]`).count(), 1, 'only the clicked cell has the button\'s label');
    assert.ok(await page.locator(`[data-testid=cell-box][data-class=${guess1}]`).count() >= 1, 'the next cell has its model\'s class');

    // The three fields make one differential. The two reviewed cells are its only classified
    // ones; the others, still of unusual colour, are listed but not in the percentages; every
    // leukocyte class has its row, in report order.
    const all = page.locator('.side [data-testid=slide-differential]');
    assert.equal(await all.locator('h3').textContent(), 'Slide 1: 3 fields together');
    const leukocytes = ['neutrophil', 'lymphocyte', 'monocyte', 'eosinophil', 'basophil', 'ig'];
    const rows = all.getByTestId('differential-row');
    assert.deepEqual((await Promise.all((await rows.all()).map((r) => r.getAttribute('data-class')))).slice(0, 6), leukocytes);
    const n = 1 + (leukocytes.includes(guess1) ? 1 : 0);
    const cellsOf = (c) => all.locator(`[data-testid=differential-row][data-class="${c}"] td`).allTextContents();
    assert.deepEqual((await cellsOf(label)).slice(0, 4), [label, '1', (100 / n).toFixed(1), n === 1 ? '2.5–100.0' : '1.3–98.7']);
    const boxes = await page.getByTestId('cell-box').count();
    assert.deepEqual((await cellsOf('unusual colour')).slice(0, 3), ['unusual colour', String(boxes - 2), 'not in the percentages']);
    assert.match(await all.getByTestId('flags').textContent(), new RegExp(`^${n} leukocytes? counted, fewer than the routine 100`));
    // With the leukocyte count (a decimal comma), absolute counts; the report has them too.
    await page.getByTestId('wbc-input').fill('7,5');
    await page.getByTestId('wbc-input').press('Tab');
    const absolute = n === 1 ? '7.50 (0.19–7.50)' : '3.75 (0.09–7.41)';
    await all.getByTestId('differential-absolute').first().waitFor();
    assert.equal(await all.locator(`[data-testid=differential-row][data-class="${label}"] [data-testid=differential-absolute]`).textContent(), absolute);
    await page.getByTestId('open-report').click();
    const inReport = page.getByTestId('report').getByTestId('slide-differential');
    assert.equal(await inReport.count(), 1, 'the report has it too');
    assert.equal(await inReport.getByTestId('wbc-shown').textContent(), 'Leukocyte count 7.5 × 10⁹/L (given by the user)');
    assert.equal(await inReport.locator(`[data-testid=differential-row][data-class="${label}"] [data-testid=differential-absolute]`).textContent(), absolute);
    assert.equal(await inReport.getByTestId('wbc-input').count(), 0, 'no input in the report');
    await page.getByTestId('report-close').click();

    // Another patient's field is never counted with these: a new slide, labelled (a label in
    // use is refused), and the third field moved to it. Each slide has its own differential and
    // leukocyte count, on the page, in the report and after a reload.
    await page.getByTestId('new-slide').click();
    assert.equal(await page.getByTestId('slide-label').inputValue(), 'Slide 2');
    await page.getByTestId('slide-label').fill('Slide 1');
    await page.getByTestId('slide-label').press('Tab');
    assert.match(await page.getByTestId('slide-error').textContent(), /another slide is labelled "Slide 1"/);
    await page.getByTestId('slide-label').fill(' P-2 ');
    await page.getByTestId('slide-label').press('Tab');
    await page.waitForFunction(() => !document.querySelector('[data-testid=slide-error]'));
    assert.equal(await page.getByTestId('slide-select').inputValue(), 'P-2', 'the new slide takes the images opened next');
    const third = page.getByTestId('entry').nth(2);
    const thirdBoxes = await third.getByTestId('cell-box').count();
    await third.getByTestId('image-slide').selectOption('P-2');
    const slide2 = page.locator('.side [data-testid=slide-differential][data-slide="P-2"]');
    await slide2.waitFor();
    const slide1 = page.locator('.side [data-testid=slide-differential][data-slide="Slide 1"]');
    const headings = async () => page.locator('.side [data-testid=slide-differential] h3').allTextContents();
    assert.deepEqual(await headings(), ['Slide 1: 2 fields together', 'P-2: 1 field']);
    const counted = async (sec) => (await sec.locator('[data-testid=differential-row] td:nth-child(2)').allTextContents()).reduce((a, t) => a + Number(t), 0);
    assert.equal(await counted(slide2), thirdBoxes, 'the third field\'s cells, and only they');
    assert.equal(await counted(slide1) + await counted(slide2), boxes, 'every cell counted once');
    assert.ok(await slide1.getByTestId('differential-absolute').count() > 0, 'slide 1 keeps its leukocyte count');
    assert.equal(await slide2.getByTestId('differential-absolute').count(), 0, 'P-2 has none yet');
    assert.equal(await slide2.getByTestId('wbc-input').inputValue(), '');
    // The review queue names each cell's slide now that there are two.
    const items = await page.getByTestId('queue-item').allTextContents();
    assert.ok(items.length > 0);
    for (const t of items) assert.match(t, t.startsWith('2-') ? /^2-\d+ \(P-2\) — / : /^[01]-\d+ \(Slide 1\) — /);
    // The cell panel says where a cell comes from: its field and its slide.
    await third.getByTestId('cell-box').first().click();
    assert.match(await page.getByTestId('cell-origin').textContent(), /^BloodImage_\d+\.jpg · P-2$/);
    assert.equal(await page.getByTestId('cell-origin').textContent(), `${await third.locator('h2').textContent()} · P-2`);
    await page.getByTestId('open-report').click();
    const reportSlides = page.getByTestId('report').getByTestId('report-slide');
    assert.deepEqual(await Promise.all((await reportSlides.all()).map((r) => r.getAttribute('data-slide'))), ['Slide 1', 'P-2']);
    assert.deepEqual(await Promise.all((await reportSlides.all()).map((r) => r.getByTestId('report-smear').count())), [2, 1]);
    await page.getByTestId('report-close').click();
    await page.reload();
    await app.backend();
    await page.locator('.side [data-testid=slide-differential][data-slide="P-2"]').waitFor({ timeout: 60_000 });
    assert.deepEqual(await headings(), ['Slide 1: 2 fields together', 'P-2: 1 field']);
    assert.equal(await page.getByTestId('entry').nth(2).getByTestId('image-slide').inputValue(), 'P-2');
    assert.equal(await page.getByTestId('slide-select').inputValue(), 'P-2');
    assert.equal(await slide1.getByTestId('wbc-input').inputValue(), '7.5');
    assert.deepEqual(rec.errors, []);
  });
});

test('a white cell the detector missed is marked with a click, classified, counted, exported, kept, and removable until the sign-off', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    await app.analyseSample(1);
    const boxes = page.getByTestId('cell-box');
    const found = annotatedWbc('BloodImage_00001.jpg');
    assert.equal(await boxes.count(), found);
    const added = page.locator('[data-testid=cell-box][data-added=true]');
    assert.equal(await added.count(), 0);
    // A point well away from the detected cell, in image pixels.
    const rect = boxes.first().locator('rect').first();
    const [bx, bw] = [Number(await rect.getAttribute('x')), Number(await rect.getAttribute('width'))];
    const point = { x: bx + bw / 2 > 320 ? 120 : 520, y: 240 };
    const overlay = page.getByTestId('overlay');
    const at = async () => {
      const b = await overlay.boundingBox();
      return { x: point.x * b.width / 640 + 0.5, y: point.y * b.height / 480 + 0.5 };
    };
    // Clicking the smear selects nothing and adds nothing until "Add a missed cell" is pressed.
    await overlay.click({ position: await at() });
    assert.equal(await boxes.count(), found);
    const add = page.getByTestId('add-cell');
    await add.click();
    assert.match(await page.getByTestId('add-cell-hint').textContent(), /centre of the white cell/);
    await overlay.click({ position: await at() });
    await added.waitFor({ timeout: 60_000 });
    assert.equal(await boxes.count(), found + 1);
    assert.equal(await page.getByTestId('add-cell-hint').count(), 0, 'one click, one cell');
    // It is selected: classified like any cell, and named as the reviewer's.
    assert.match(await page.getByTestId('cell-title').textContent(), new RegExp(`^Cell 0-${found}: `));
    assert.match(await page.getByTestId('cell-added').textContent(), /Added by the reviewer/);
    await page.getByTestId('cell-crop').waitFor();
    assert.match(await page.getByTestId('cell-confidence').textContent(), /\d+\.\d %/);
    assert.match(await page.getByTestId('findings').textContent(), /1 white cells, .* \+ 1 added by the reviewer$/);
    assert.equal(await page.getByTestId('add-cell-error').count(), 0);

    // Exported with the others, centred where it was marked, counted in the differential.
    const exportJson = async () => {
      const [dl] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-json').click()]);
      return JSON.parse(readFileSync(await dl.path(), 'utf8'))[0];
    };
    let doc = await exportJson();
    assert.equal(doc.cells.length, found + 1);
    const cell = doc.cells[found];
    assert.equal(cell.added, true);
    assert.ok(doc.cells.slice(0, found).every((c) => c.added === false));
    const [x0, y0, x1, y1] = cell.bbox;
    assert.ok(Math.abs((x0 + x1) / 2 - point.x) <= 1 && Math.abs((y0 + y1) / 2 - point.y) <= 1, `box ${cell.bbox} around ${JSON.stringify(point)}`);
    assert.ok(x1 - x0 > 40, `a cell-sized box: ${cell.bbox}`);
    assert.equal(Object.values(doc.differential).reduce((a, b) => a + b, 0), found + 1);

    // Kept across a reload.
    await page.reload();
    await app.backend();
    await added.waitFor({ timeout: 60_000 });
    assert.equal(await boxes.count(), found + 1);

    // A mistaken mark is removed; a detected cell cannot be (it is reviewed instead).
    // (Its label may be wider than its box: click the box itself.)
    await added.locator('rect').first().click();
    await page.getByTestId('remove-added').click();
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=cell-box]').length === n, found);
    assert.equal(await added.count(), 0);
    assert.doesNotMatch(await page.getByTestId('findings').textContent(), /added/);
    await boxes.first().click();
    assert.equal(await page.getByTestId('remove-added').count(), 0);

    // Marked again, every cell reviewed, signed off: the count is final, nothing is added or removed.
    await add.click();
    await overlay.click({ position: await at() });
    await added.waitFor({ timeout: 60_000 });
    for (let i = 0; i < found + 1; i += 1) {
      if (await page.getByTestId('queue-item').count() === 0) break;
      await page.getByTestId('queue-item').first().click();
      await page.getByTestId('cell-title').click();
      await page.keyboard.press('5');
    }
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=queue-item]').length === 0);
    await page.getByTestId('signoff-name').fill('Dr Test');
    await page.getByTestId('signoff').click();
    await page.getByTestId('signed').waitFor();
    assert.equal(await add.isDisabled(), true);
    assert.match(await add.getAttribute('title'), /^signed off by Dr Test/);
    await added.locator('rect').first().click();
    assert.equal(await page.getByTestId('remove-added').isDisabled(), true);
    doc = await exportJson();
    assert.equal(doc.cells.filter((c) => c.added).length, 1);
    assert.equal(doc.signed_off.by, 'Dr Test');
    // The report says so too.
    await page.getByTestId('open-report').click();
    const report = page.getByTestId('report');
    await report.waitFor();
    assert.match(await report.getByTestId('report-findings').textContent(), /\+ 1 added by the reviewer$/);

    assert.deepEqual(rec.errors, []);
    assert.deepEqual(rec.failed, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});
