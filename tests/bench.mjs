// Browser benchmark (a script, not a test): for each backend the page offers (CPU in WASM;
// WebGPU through Chromium's SwiftShader adapter), cells per second over the bundled sample
// smears, time from page load to the first diagnosis, and the sizes of the wasm files and
// the weights. Run after a build: `node tests/bench.mjs` (or `cd tests && npm run bench`).
import { statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { serveDist, launch, AppPage, dist } from './e2e/support.mjs';

const mb = (p) => (statSync(p).size / 1e6).toFixed(1) + ' MB';
for (const f of readdirSync(dist).filter((f) => f.endsWith('.wasm'))) console.log(`size ${f}: ${mb(join(dist, f))}`);
console.log(`size weights: ${mb(join(dist, 'model/cytolens-diffusion.bpk'))}`);

const server = await serveDist();
for (const webgpu of [false, true]) {
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
    console.log(`${backend}: ${cells} cells in ${samples} smears, ${(cells / secs).toFixed(2)} cells/s (detection included); page load to first diagnosis ${(first / 1000).toFixed(2)} s`);
  } finally {
    await ctx.close();
  }
}
await server.close();
