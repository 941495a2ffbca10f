// Keeping the session: when the browser refuses to keep something (the origin's storage quota,
// a full disk), the page says so and that a reload would lose what was not kept, and the
// analysis goes on. The quota set through the DevTools protocol (Storage.overrideQuotaForOrigin)
// binds the service worker's cache (it made the sample's fetch fail until 7 December) but not,
// in this Chromium, IndexedDB: there a write's transaction is aborted at its commit by the test,
// as a full disk does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, withApp, foreignRequests } from './support.mjs';

const server = useServer();

test('a write refused for the quota is said on the page, and the analysis goes on', async () => {
  await withApp(server, async ({ page, rec, app, ctx }) => {
    await app.backend();
    const warning = page.getByTestId('save-problem');
    await app.analyseSample(0);
    assert.equal(await warning.count(), 0, 'with room to keep it, no warning');
    // The service worker's cache refuses the next sample: it is served and analysed all the same.
    const cdp = await ctx.newCDPSession(page);
    await cdp.send('Storage.overrideQuotaForOrigin', { origin: server.origin, quotaSize: 4096 });
    await app.analyseSample(1);
    assert.equal(await page.getByTestId('file-error').count(), 0);
    // Every IndexedDB write from now on is aborted at its commit, after its request succeeded.
    await page.evaluate(() => {
      const put = IDBObjectStore.prototype.put;
      IDBObjectStore.prototype.put = function (...args) {
        const req = put.apply(this, args);
        const tx = this.transaction;
        req.addEventListener('success', () => tx.abort());
        return req;
      };
    });
    await app.analyseSample(2);
    await warning.waitFor({ timeout: 60_000 });
    const text = await warning.textContent();
    assert.match(text, /^This browser did not keep the latest of this session \(IndexedDB: the browser aborted the write\)/, text);
    assert.match(text, /a reload would lose results and reviews not yet kept/, text);
    assert.equal(await warning.getAttribute('role'), 'alert');
    // The three smears were analysed to the end all the same.
    const done = await page.getByTestId('progress-text').allTextContents();
    assert.equal(done.length, 3);
    for (const t of done) assert.match(t, /^done: [1-9]\d* cells/);
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});
