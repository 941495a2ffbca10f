// Bad input in the browser: every case of the list gets its own message in the page, and the
// good files of the same drop (a JPEG, and a TIFF, a BMP, a WebP, an AVIF (decoded by the
// browser) and converted PNGs of a BCCD field) are analysed normally.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { useServer, withApp, bccd, root, foreignRequests } from './support.mjs';
import { png, tiff, bmp, webpOf, pixelsOf } from './fixtures.mjs';

const server = useServer();

test('each bad file gets its own message and the others of the same drop are analysed', async () => {
  await withApp(server, async ({ page, rec, app }) => {
    await app.backend();
    const field = await pixelsOf(page, 'samples/BloodImage_00012.jpg');
    const { width, height } = field;
    const px = (x, y) => [...field.rgba.subarray(4 * (y * width + x), 4 * (y * width + x) + 3)];
    const jpeg = readFileSync(join(bccd, 'BloodImage_00001.jpg'));
    const avif = readFileSync(join(root, 'tests/e2e/files/BloodImage_00012.avif'));
    const files = {
      'good.jpg': jpeg,
      'empty.jpg': Buffer.alloc(0),
      'notes.jpg': Buffer.from('this is a text file renamed .jpg'),
      'truncated.jpg': jpeg.subarray(0, Math.floor(jpeg.length / 3)),
      'alpha.png': png({ width, height, colorType: 6, samples: (x, y) => [...px(x, y), x < 24 ? 0 : 255] }),
      'deep.png': png({ width, height, colorType: 2, bitDepth: 16, samples: (x, y) => px(x, y).map((v) => v * 257) }),
      'gray.png': png({ width, height, colorType: 0, samples: (x, y) => [px(x, y)[1]] }),
      'dot.png': png({ width: 1, height: 1, colorType: 2, samples: () => [200, 100, 150] }),
      'blank.png': png({ width: 320, height: 240, colorType: 2, samples: () => [236, 226, 221] }),
      // The header claims 30000x30000 (2.7 GB of RGB); it is refused before anything inflates.
      'bomb.png': png({ width: 30000, height: 30000, colorType: 2, idat: deflateSync(Buffer.alloc(90001 * 4)) }),
      'field.tiff': tiff(field),
      'field.bmp': bmp(field),
      'field.webp': await webpOf(page, 'samples/BloodImage_00012.jpg'),
      'cut.webp': (await webpOf(page, 'samples/BloodImage_00012.jpg')).subarray(0, 2000),
      // Formats model-core does not read, handed to the browser's decoder (tests/e2e/files).
      'field.avif': avif,
      'cut.avif': avif.subarray(0, Math.floor(avif.length / 3)),
      'gray.avif': readFileSync(join(root, 'tests/e2e/files/gray.avif')),
      // A HEIC's signature with nothing decodable behind it: Chromium has no HEIC decoder.
      'photo.heic': Buffer.concat([Buffer.from('\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic', 'latin1'), Buffer.alloc(500, 7)]),
    };
    const types = { png: 'image/png', tiff: 'image/tiff', bmp: 'image/bmp', webp: 'image/webp', avif: 'image/avif', heic: 'image/heic' };
    const mime = (n) => types[n.split('.').pop()] ?? 'image/jpeg';
    // The picker offers every format decoding reads, and those the browser may.
    assert.equal(await page.getByTestId('file-input').getAttribute('accept'), '.jpg,.jpeg,.png,.tif,.tiff,.bmp,.webp,.avif,.heic,.heif,.jxl');
    await page.getByTestId('file-input').setInputFiles(
      Object.entries(files).map(([name, buffer]) => ({ name, mimeType: mime(name), buffer })));
    const entry = (name) => page.getByTestId('entry').filter({ has: page.locator('h2', { hasText: name }) });

    const errors = {
      'empty.jpg': /the file is empty \(0 bytes\)/,
      'notes.jpg': /not a readable image/,
      'truncated.jpg': /truncated or damaged/,
      'cut.webp': /truncated or damaged/,
      'gray.png': /grayscale image: CytoLens needs a colour image/,
      'dot.png': /1x1 pixels, too small to hold a cell/,
      'blank.png': /no white cell found in this image/,
      'bomb.png': /30000x30000 pixels, above the limit of 40 megapixels/,
      'cut.avif': /AVIF could not be read by this browser \(.+\): save it as JPEG, or open it in a browser that reads it/,
      'gray.avif': /grayscale image: CytoLens needs a colour image/,
      'photo.heic': /HEIC \(a phone's photo\) could not be read by this browser \(.+\): save it as JPEG/,
    };
    for (const [name, want] of Object.entries(errors)) {
      const err = entry(name).getByTestId('file-error');
      await err.waitFor({ timeout: 180_000 });
      const text = await err.textContent();
      assert.match(text, want, `${name}: ${text}`);
      assert.ok(text.startsWith(`${name}: `), text);
    }
    const notices = { 'field.avif': /^field\.avif: AVIF read by this browser's own decoder/, 'alpha.png': /^alpha\.png: \d+ transparent pixels \(\d+\.\d % of the image\) were flattened onto a white background/, 'deep.png': /16-bit samples were reduced to 8-bit/ };
    for (const [name, want] of Object.entries(notices)) {
      assert.match(await entry(name).getByTestId('file-notice').textContent(), want);
    }
    // The good files are analysed to the end, each finding the field's white cell(s).
    for (const name of ['good.jpg', 'alpha.png', 'deep.png', 'field.tiff', 'field.bmp', 'field.webp', 'field.avif']) {
      const done = entry(name).getByTestId('progress-text').filter({ hasText: /done:/ });
      await done.waitFor({ timeout: 300_000 });
      assert.match(await done.textContent(), /done: [1-9]\d* cells/, name);
      assert.equal(await entry(name).getByTestId('file-error').count(), 0, name);
    }
    // The TIFF and the converted PNGs hold the same field: the same white cells are found.
    const wbc = async (name) => Number(/(\d+) white cells/.exec(await entry(name).getByTestId('findings').textContent())[1]);
    assert.equal(await wbc('field.tiff'), await wbc('alpha.png'));
    assert.equal(await wbc('field.tiff'), await wbc('deep.png'));
    assert.equal(await wbc('field.tiff'), await wbc('field.bmp'));
    assert.equal(await wbc('field.tiff'), await wbc('field.avif'));
    assert.deepEqual(rec.errors, []);
    assert.deepEqual(foreignRequests(rec, server.origin), []);
  });
});
