// CytoLens service worker: after the first visit the app (code, weights, samples) works offline.
// Strategy: same-origin GETs go to the network first and refresh the cache; when the network is
// unreachable the cached copy answers. So an online visit always gets the current version (a
// new build replaces the cached files as they are fetched) and an offline visit the last one.
// It never contacts another origin: cross-origin requests are not touched (and the page's CSP
// forbids them anyway).
const CACHE = 'cytolens-v1';

// Precache the app shell on install: the page, every asset it references (Trunk's hashed
// names are read from the page itself), the compute worker and the model.
self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const page = await fetch('./', { cache: 'no-store' });
    const html = await page.clone().text();
    await cache.put('./', page);
    const assets = [...html.matchAll(/(?:href|src)="(\/[^"]+)"/g)].map((m) => m[1]);
    const fixed = ['./worker_loader.js', './worker.js', './worker_bg.wasm', './sw.js',
      './model/cytolens-diffusion.json', './model/cytolens-diffusion.bpk'];
    await cache.addAll([...new Set([...assets, ...fixed])]);
    await self.skipWaiting();
  })());
});
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) await cache.put(req, res.clone());
      return res;
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return hit;
      throw err;
    }
  })());
});
