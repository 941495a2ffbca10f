// CytoLens service worker: after the first visit the app (code, weights, samples) works offline.
//
// - App shell (page, code, styles, samples, model card and its measured figures): same-origin GETs go to the network
//   first and refresh the cache; when the network is unreachable the cached copy answers. So an
//   online visit always gets the current version (a new build replaces the cached files as they
//   are fetched) and an offline visit the last one.
// - Weights: requested as `model/<name>.bpk?sha256=<hash>` (the hash comes from the model
//   card), cached once in a cache named after that hash and served from it without touching
//   the network. A body whose SHA-256 differs is never cached; when a new hash is cached, the
//   caches of older weights are deleted.
// It never contacts another origin: cross-origin requests are not touched (and the page's CSP
// forbids them anyway).
const SHELL = 'cytolens-shell-v2';
const WEIGHTS = 'cytolens-weights-';

const hex = (buf) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

/** Fetch keyed weights, cache them under their hash if the body matches it, drop older ones. */
async function fetchWeights(req, hash) {
  const res = await fetch(req);
  if (!res.ok) return res;
  const digest = hex(await crypto.subtle.digest('SHA-256', await res.clone().arrayBuffer()));
  if (digest === hash) {
    // A full disk or the origin's quota refuses the copy: the weights are still served (and
    // fetched again next time), only offline use is lost.
    await keep(WEIGHTS + hash, req, res.clone());
    for (const name of await caches.keys()) {
      if (name.startsWith(WEIGHTS) && name !== WEIGHTS + hash) await caches.delete(name);
    }
  }
  return res;
}

/** Put a response in a cache; a refusal (QuotaExceededError) is warned about, not thrown. */
async function keep(cacheName, req, res) {
  try {
    await (await caches.open(cacheName)).put(req, res);
  } catch (err) {
    console.warn(`CytoLens offline copy of ${req.url} not kept: ${err}`);
  }
}

// Precache on install: the page, every asset it references (Trunk's hashed names are read from
// the page itself), the compute worker, the model card and the weights it names.
self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL);
    const page = await fetch('./', { cache: 'no-store' });
    const html = await page.clone().text();
    await cache.put('./', page);
    const assets = [...html.matchAll(/(?:href|src)="(\/[^"]+)"/g)].map((m) => m[1]);
    const fixed = ['./worker_loader.js', './worker.js', './worker_bg.wasm', './sw.js',
      './model/cytolens-diffusion.json', './model/cytolens-diffusion.sheet.json'];
    await cache.addAll([...new Set([...assets, ...fixed])]);
    const card = await (await cache.match('./model/cytolens-diffusion.json')).json();
    if (card.weights_sha256) {
      const url = new URL(`./model/cytolens-diffusion.bpk?sha256=${card.weights_sha256}`, self.location).href;
      await fetchWeights(new Request(url), card.weights_sha256);
    } else {
      await cache.add('./model/cytolens-diffusion.bpk');
    }
    await self.skipWaiting();
  })());
});

// Drop caches of older versions of this worker.
self.addEventListener('activate', (event) => event.waitUntil((async () => {
  for (const name of await caches.keys()) {
    if (name !== SHELL && !name.startsWith(WEIGHTS)) await caches.delete(name);
  }
  await self.clients.claim();
})()));

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin) return;
  const hash = url.pathname.endsWith('.bpk') ? url.searchParams.get('sha256') : null;
  if (hash) {
    event.respondWith((async () => {
      const hit = (await caches.has(WEIGHTS + hash)) && (await (await caches.open(WEIGHTS + hash)).match(req));
      return hit || fetchWeights(req, hash);
    })());
    return;
  }
  event.respondWith((async () => {
    let res;
    try {
      res = await fetch(req);
    } catch (err) {
      const hit = await (await caches.open(SHELL)).match(req, { ignoreSearch: true });
      if (hit) return hit;
      throw err;
    }
    // The network's answer is served whether or not the cache keeps a copy of it.
    if (res.ok) await keep(SHELL, req, res.clone());
    return res;
  })());
});
