// Image files built in the test from pixels, so the bad-input cases need no committed binaries:
// a minimal PNG encoder (gray, RGB, RGBA; 8 or 16 bit), an uncompressed baseline RGB TIFF, a
// 24-bit BMP and a WebP encoded by the browser.
import { deflateSync } from 'node:zlib';

const crcTable = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

const CHANNELS = { 0: 1, 2: 3, 6: 4 };

/**
 * A PNG of `width` x `height`; `samples(x, y)` gives the channel values of a pixel (0-255 for
 * 8 bit, 0-65535 for 16 bit). `colorType`: 0 gray, 2 RGB, 6 RGBA. `idat` replaces the image
 * data (for a header that claims more than it holds).
 */
export function png({ width, height, colorType, bitDepth = 8, samples, idat }) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.writeUInt8(bitDepth, 8);
  ihdr.writeUInt8(colorType, 9);
  let data = idat;
  if (!data) {
    const bytes = bitDepth / 8;
    const stride = width * CHANNELS[colorType] * bytes;
    const raw = Buffer.alloc(height * (stride + 1));
    for (let y = 0; y < height; y++) {
      let o = y * (stride + 1) + 1; // filter byte 0 (none)
      for (let x = 0; x < width; x++) {
        for (const v of samples(x, y)) {
          if (bytes === 2) raw.writeUInt16BE(v, o); else raw.writeUInt8(v, o);
          o += bytes;
        }
      }
    }
    data = deflateSync(raw);
  }
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', data), chunk('IEND', Buffer.alloc(0))]);
}

/** An uncompressed little-endian RGB TIFF from RGBA pixels. */
export function tiff({ width, height, rgba }) {
  const entries = [
    [256, 4, 1, width], [257, 4, 1, height], [258, 3, 3, 134], [259, 3, 1, 1], [262, 3, 1, 2],
    [273, 4, 1, 140], [277, 3, 1, 3], [278, 4, 1, height], [279, 4, 1, width * height * 3],
    [284, 3, 1, 1],
  ];
  const head = Buffer.alloc(140);
  head.write('II', 0, 'ascii');
  head.writeUInt16LE(42, 2);
  head.writeUInt32LE(8, 4);
  head.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, count, value], i) => {
    const o = 10 + 12 * i;
    head.writeUInt16LE(tag, o);
    head.writeUInt16LE(type, o + 2);
    head.writeUInt32LE(count, o + 4);
    if (type === 3 && count === 1) head.writeUInt16LE(value, o + 8); else head.writeUInt32LE(value, o + 8);
  });
  head.writeUInt32LE(0, 10 + 12 * entries.length); // no next IFD (ends at 134)
  [8, 8, 8].forEach((b, i) => head.writeUInt16LE(b, 134 + 2 * i));
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    pixels[j] = rgba[i]; pixels[j + 1] = rgba[i + 1]; pixels[j + 2] = rgba[i + 2];
  }
  return Buffer.concat([head, pixels]);
}

/** A 24-bit BMP (bottom-up rows of BGR, each padded to 4 bytes) from RGBA pixels. */
export function bmp({ width, height, rgba }) {
  const stride = (width * 3 + 3) & ~3;
  const out = Buffer.alloc(54 + stride * height);
  out.write('BM', 0, 'ascii');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(54, 10); // pixel data offset
  out.writeUInt32LE(40, 14); // BITMAPINFOHEADER
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22); // positive: bottom-up
  out.writeUInt16LE(1, 26); // planes
  out.writeUInt16LE(24, 28); // bits per pixel
  out.writeUInt32LE(stride * height, 34); // image size (no compression)
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * stride;
    for (let x = 0; x < width; x++) {
      const i = 4 * (y * width + x);
      out[row + 3 * x] = rgba[i + 2];
      out[row + 3 * x + 1] = rgba[i + 1];
      out[row + 3 * x + 2] = rgba[i];
    }
  }
  return out;
}

/** A WebP of an image served by the page, encoded by the browser (lossy, quality 0.95). */
export async function webpOf(page, url) {
  const b64 = await page.evaluate(async (u) => {
    const bmp = await createImageBitmap(await (await fetch(u)).blob());
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    c.getContext('2d').drawImage(bmp, 0, 0);
    const blob = await c.convertToBlob({ type: 'image/webp', quality: 0.95 });
    if (blob.type !== 'image/webp') throw new Error(`the browser encoded ${blob.type}, not WebP`);
    const d = new Uint8Array(await blob.arrayBuffer());
    let s = '';
    for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
    return btoa(s);
  }, url);
  return Buffer.from(b64, 'base64');
}

/** RGBA pixels of an image served by the page, decoded by the browser. */
export async function pixelsOf(page, url) {
  const { width, height, b64 } = await page.evaluate(async (u) => {
    const bmp = await createImageBitmap(await (await fetch(u)).blob());
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext('2d');
    g.drawImage(bmp, 0, 0);
    const d = g.getImageData(0, 0, bmp.width, bmp.height).data;
    let s = '';
    for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
    return { width: bmp.width, height: bmp.height, b64: btoa(s) };
  }, url);
  return { width, height, rgba: Buffer.from(b64, 'base64') };
}

/** A PNG of `bytes` (an image file) blurred by the browser's canvas filter `blur(sigmaPx)`. */
export async function blurredPng(page, bytes, sigmaPx) {
  const b64 = await page.evaluate(async ([src, sigma]) => {
    const raw = Uint8Array.from(atob(src), (ch) => ch.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([raw]));
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext('2d');
    g.filter = `blur(${sigma}px)`;
    g.drawImage(bmp, 0, 0);
    const d = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (let i = 0; i < d.length; i += 8192) s += String.fromCharCode(...d.subarray(i, i + 8192));
    return btoa(s);
  }, [Buffer.from(bytes).toString('base64'), sigmaPx]);
  return Buffer.from(b64, 'base64');
}
