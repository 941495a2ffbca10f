// Privacy by construction: a strict CSP, no request to another origin, and offline use after
// the first visit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { useServer, withApp, foreignRequests } from './support.mjs';

const server = useServer();


test('the page carries a strict CSP and makes no request to another origin', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    const csp = await page.locator('meta[http-equiv=Content-Security-Policy]').getAttribute('content');
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /connect-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|https?:/);
    await app.backend();
    const analysisStart = Date.now();
    await app.analyseSample(2);
    const foreign = foreignRequests(rec, server.origin);
    assert.deepEqual(foreign, [], 'no request leaves the origin');
    const after = rec.requests.filter((r) => r.at >= analysisStart).map((r) => new URL(r.url).pathname);
    for (const p of after) assert.match(p, /^\/(samples|model)\/|\.(js|wasm|css|svg)$/, `unexpected request during analysis: ${p}`);
    assert.deepEqual(rec.errors, []);
  });
});

test('after the first visit the app analyses a smear offline', async () => {
  await withApp(server, async ({ page, rec, app, ctx }) => {
    await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 30_000 }).catch(async () => {
      await page.reload(); // the first load registers the worker; the second is controlled
      await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 30_000 });
    });
    await app.backend();
    await app.analyseSample(1);
    // The weights are cached under their hash, as the model card names it.
    const card = await page.evaluate(async () => (await fetch('model/cytolens-diffusion.json')).json());
    assert.match(card.weights_sha256, /^[0-9a-f]{64}$/);
    const current = `cytolens-weights-${card.weights_sha256}`;
    assert.ok((await page.evaluate(() => caches.keys())).includes(current));
    // A body that does not match the hash in its URL is never cached.
    const bogus = '0'.repeat(64);
    await page.evaluate(async (h) => (await fetch(`model/cytolens-diffusion.bpk?sha256=${h}`)).arrayBuffer(), bogus);
    assert.ok(!(await page.evaluate(() => caches.keys())).includes(`cytolens-weights-${bogus}`));
    // A new version replaces the old one: caching the current weights anew drops other weights.
    await page.evaluate(async (cur) => {
      await caches.delete(cur);
      await (await caches.open('cytolens-weights-older')).put('model/old.bpk', new Response('old'));
      await (await fetch(`model/cytolens-diffusion.bpk?sha256=${cur.slice('cytolens-weights-'.length)}`)).arrayBuffer();
    }, current);
    const keys = await page.evaluate(() => caches.keys());
    assert.ok(keys.includes(current), keys.join(', '));
    assert.ok(!keys.includes('cytolens-weights-older'), keys.join(', '));
    await ctx.setOffline(true);
    await page.reload();
    await app.backend();
    await app.analyseSample(1);
    const done = await page.getByTestId('progress-text').last().textContent();
    assert.match(done, /done: 1 cells/);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});
