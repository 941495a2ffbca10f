// Accessibility: axe-core (the rules of WCAG 2 A and AA and axe's best practices) finds nothing
// on the page at each step of a review, and the report is a modal dialog for the keyboard: the
// focus moves into it, the page under it is inert, review keys do nothing to the cell hidden
// under it, Escape closes it and the focus returns to the button that opened it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { useServer, withApp, foreignRequests } from './support.mjs';

const server = useServer();
// Injected through the DevTools protocol (the page's CSP rightly refuses inline scripts).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** axe's violations on the page as it is now, one line each with its first elements. */
async function violations(page) {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(axeSource);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return r.violations.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')})`);
}

test('axe finds no violation at any step of a review, and the report is a keyboard-safe modal dialog', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    assert.deepEqual(await violations(page), [], 'empty page');
    await app.analyseSample(1);
    await app.analyseSample(2);
    // A cell box is reached by the keyboard: focused, Enter selects it (and does not confirm
    // its class); a digit then reviews it.
    const boxes = page.getByTestId('cell-box');
    assert.equal(await boxes.first().getAttribute('tabindex'), '0');
    assert.match(await boxes.first().getAttribute('aria-label'), /^Cell \d+-\d+: .+, (auto|review|anomaly)$/);
    await boxes.last().focus();
    await page.keyboard.press('Enter');
    const lastId = (await boxes.last().getAttribute('aria-label')).split(':')[0];
    await page.waitForFunction((t) => document.querySelector('[data-testid=cell-title]')?.textContent.startsWith(t), lastId);
    assert.equal(await page.getByTestId('reviewed-badge').count(), 0, 'Enter on a box selects, it does not confirm');
    // Enter again, on the box now selected, confirms the model's class, as after a click (a
    // cell of unusual colour is then counted as that class); undo restores it.
    const shown = await boxes.last().getAttribute('data-class');
    await page.keyboard.press('Enter');
    await page.waitForFunction((s) => [...document.querySelectorAll('[data-testid=cell-box]')].at(-1).dataset.class !== s, shown);
    await page.keyboard.press('u');
    await page.waitForFunction((s) => [...document.querySelectorAll('[data-testid=cell-box]')].at(-1).dataset.class === s, shown);
    await boxes.first().click();
    await page.getByTestId('cell-confidence').waitFor();
    assert.deepEqual(await violations(page), [], 'two smears analysed, a cell selected');
    await page.getByTestId('add-cell').first().click();
    assert.deepEqual(await violations(page), [], 'marking a missed cell');
    await page.getByTestId('add-cell').first().click(); // leave marking

    const box = page.getByTestId('cell-box').first();
    const before = await box.getAttribute('data-class');
    assert.notEqual(before, 'lymphocyte');
    await page.getByTestId('open-report').click();
    const report = page.getByTestId('report');
    await report.waitFor();
    assert.equal(await report.getAttribute('role'), 'dialog');
    assert.deepEqual(await violations(page), [], 'report open');
    // The focus is in the dialog, on its Close button, and the page under it is inert.
    await page.waitForFunction(() => document.activeElement?.dataset.testid === 'report-close');
    assert.equal(await page.locator('main').getAttribute('inert'), '');
    // Review keys do nothing while the report covers the cells; Escape closes it.
    for (const key of ['5', 'u', '0', 'Enter']) await page.keyboard.press(key);
    await page.keyboard.press('Escape');
    await report.waitFor({ state: 'detached' });
    assert.equal(await box.getAttribute('data-class'), before, 'no key reviewed the cell under the report');
    assert.equal(await page.getByTestId('reviewed-badge').count(), 0);
    assert.equal(await page.locator('main').getAttribute('inert'), null);
    await page.waitForFunction(() => document.activeElement?.dataset.testid === 'open-report');
    // With the report closed the same keys review again.
    await page.getByTestId('cell-title').click();
    await page.keyboard.press('5');
    await page.waitForFunction(() => document.querySelector('[data-testid=cell-box]')?.dataset.class === 'lymphocyte');
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});
