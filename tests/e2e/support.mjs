// Shared end-to-end helpers: a static server for dist/, headless Chromium from Debian, a
// recorder of console errors and network requests, and the page object of the app.
import http from 'node:http';
import { readFile, stat, mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, extname, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { before, after } from 'node:test';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '../..');
export const dist = join(root, 'dist');
export const bccd = resolve(root, '../shared/data/bccd/JPEGImages');
export const pbc = resolve(root, '../shared/data/pbc');

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json', '.jpg': 'image/jpeg',
  '.png': 'image/png', '.bpk': 'application/octet-stream', '.txt': 'text/plain', '.webmanifest': 'application/manifest+json',
};

/** Serve dist/ on 127.0.0.1 at a free port. */
export async function serveDist() {
  const server = http.createServer(async (req, res) => {
    try {
      let path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
      if (path.endsWith('/')) path += 'index.html';
      const file = resolve(dist, '.' + path);
      if (!file.startsWith(dist)) { res.writeHead(403).end(); return; }
      await stat(file);
      res.writeHead(200, { 'content-type': types[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address();
  return { url: `http://127.0.0.1:${port}/`, origin: `http://127.0.0.1:${port}`, close: () => new Promise((ok) => server.close(ok)) };
}

/** Headless Chromium from Debian's package; `webgpu` adds --enable-unsafe-webgpu (SwiftShader adapter). */
export async function launch({ webgpu = false } = {}) {
  const userDataDir = await mkdtemp(join(tmpdir(), 'cytolens-e2e-'));
  const args = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'];
  if (webgpu) args.push('--enable-unsafe-webgpu');
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium', headless: true, args, viewport: { width: 1280, height: 900 },
  });
  return context;
}

/** Record console errors, uncaught exceptions, failed requests and every request URL. */
export function record(page) {
  const rec = { errors: [], failed: [], requests: [] };
  page.on('console', (m) => { if (m.type() === 'error') rec.errors.push(m.text()); });
  page.on('pageerror', (e) => rec.errors.push(String(e)));
  page.on('requestfailed', (r) => rec.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) rec.failed.push(`${r.url()} HTTP ${r.status()}`); });
  page.on('request', (r) => rec.requests.push({ url: r.url(), at: Date.now() }));
  page.context().on('request', (r) => rec.requests.push({ url: r.url(), at: Date.now() }));
  return rec;
}

/** Requests that went anywhere but the page's own origin (blob: and data: URLs are local). */
export function foreignRequests(rec, origin) {
  return rec.requests.filter((r) => !r.url.startsWith(origin) && !/^(blob|data):/.test(r.url));
}

/** Page object of the CytoLens app. */
export class AppPage {
  constructor(page, url) { this.page = page; this.url = url; }
  async open() { await this.page.goto(this.url); await this.page.getByTestId('drop-zone').waitFor(); }
  backendLine() { return this.page.getByTestId('backend-line'); }
  async backend() {
    await this.page.waitForSelector('[data-testid=backend-line][data-backend]', { timeout: 60_000 });
    return this.backendLine().getAttribute('data-backend');
  }
  async selfTest() {
    await this.page.waitForFunction(() => document.querySelector('[data-testid=self-test]')?.textContent?.length > 0, null, { timeout: 120_000 });
    return this.page.getByTestId('self-test').textContent();
  }
  async openFiles(paths) { await this.page.getByTestId('file-input').setInputFiles(paths); }
  canvases() { return this.page.getByTestId('image-canvas'); }
  fileErrors() { return this.page.getByTestId('file-error'); }
  /** Open bundled sample `index` and wait until its analysis (the newest entry) is done. */
  async analyseSample(index) {
    const before = await this.page.getByTestId('entry').count();
    await this.page.getByTestId('sample').nth(index).click();
    await this.page.waitForFunction((n) => {
      const all = document.querySelectorAll('[data-testid=progress-text]');
      return all.length > n && /done:/.test(all[all.length - 1].textContent);
    }, before, { timeout: 180_000 });
  }
}

/** Serve dist/ for the tests of this file (node:test hooks); `url` and `origin` once started. */
export function useServer() {
  const server = {};
  before(async () => { Object.assign(server, await serveDist()); });
  after(async () => { await server.close(); });
  return server;
}

/**
 * Run `body({ page, rec, app, ctx })` in a fresh headless Chromium with the app opened and its
 * requests and console recorded; the browser is closed whatever happens.
 */
export async function withApp(server, body, { webgpu = false } = {}) {
  const ctx = await launch({ webgpu });
  try {
    const page = await ctx.newPage();
    const rec = record(page);
    const app = new AppPage(page, server.url);
    await app.open();
    await body({ page, rec, app, ctx });
  } finally {
    await ctx.close();
  }
}

/**
 * A PNG (or `type`: 'image/jpeg' at quality 0.95) mosaic of the JPEG files at `paths` (all of
 * one size), `cols` to a row, drawn by the
 * browser of `page` (the project decodes images in Rust only; this just makes a test input):
 * one large "smear" with the white cells of several fields.
 */
export async function mosaic(page, paths, cols, type = 'image/png') {
  const jpegs = paths.map((p) => readFileSync(p).toString('base64'));
  const encoded = await page.evaluate(async ({ jpegs, cols, type }) => {
    const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const tiles = await Promise.all(jpegs.map((j) => createImageBitmap(new Blob([bytes(j)], { type: 'image/jpeg' }))));
    const [w, h] = [tiles[0].width, tiles[0].height];
    const canvas = new OffscreenCanvas(w * cols, h * Math.ceil(tiles.length / cols));
    const ctx = canvas.getContext('2d');
    tiles.forEach((t, i) => ctx.drawImage(t, (i % cols) * w, Math.floor(i / cols) * h));
    const out = new Uint8Array(await (await canvas.convertToBlob({ type, quality: 0.95 })).arrayBuffer());
    let s = '';
    for (let i = 0; i < out.length; i += 0x8000) s += String.fromCharCode(...out.subarray(i, i + 0x8000));
    return btoa(s);
  }, { jpegs, cols, type });
  return Buffer.from(encoded, 'base64');
}
