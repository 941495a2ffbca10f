// The first version of the app: open an image, see it at its size, see the backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { useServer, withApp, bccd, foreignRequests } from './support.mjs';

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
