// Browser test of the web demo: serves web/dist on 127.0.0.1, opens it in Debian's headless Chromium
// (WebGPU through SwiftShader), waits for distillation iterations, and checks from a screenshot's pixels that
// the synthetic grid and the Poincaré disk were drawn. A second browser without WebGPU must get the page that
// says what is needed. Prints one JSON line of measurements; exits non-zero on any failure.
// Usage: node web/test.mjs [--iterations N] [--timeout-s S]   (after web/build.sh; npm install in web/)
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, 'dist');
const outDir = path.join(here, 'test-out');
const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const wantIterations = arg('--iterations', 3);
const timeoutMs = arg('--timeout-s', 420) * 1000;
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const base = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];
// The set that gives a WebGPU adapter (SwiftShader) *and* a visible WebGPU canvas in screenshots
// (../shared/docs/platform.md §5).
const webgpu = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=vulkan', '--use-vulkan=swiftshader'];

function fail(msg) { console.error('FAIL: ' + msg); process.exitCode = 1; throw new Error(msg); }

// --- a static server with the right MIME types (wasm streaming compilation needs application/wasm)
const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.png': 'image/png' };
function serve() {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const file = path.join(dist, rel.endsWith('/') ? rel + 'index.html' : rel);
    if (!file.startsWith(dist) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise(ok => server.listen(0, '127.0.0.1', () => ok(server)));
}

// --- a minimal PNG decoder (8-bit RGB/RGBA, not interlaced: what Chromium's screenshots are)
function decodePng(buf) {
  let p = 8, width = 0, height = 0, ctype = 0; const idat = [];
  while (p < buf.length) {
    const len = buf.readUInt32BE(p), type = buf.toString('ascii', p + 4, p + 8), data = buf.subarray(p + 8, p + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4); ctype = data[9];
      if (data[8] !== 8 || data[12] !== 0 || (ctype !== 2 && ctype !== 6)) fail('unexpected PNG format');
    } else if (type === 'IDAT') idat.push(data);
    p += 12 + len;
  }
  const bpp = ctype === 6 ? 4 : 3, stride = width * bpp, raw = zlib.inflateSync(Buffer.concat(idat));
  const out = Buffer.alloc(width * height * 4), prev = Buffer.alloc(stride), cur = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], row = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? cur[x - bpp] : 0, b = prev[x], c = x >= bpp ? prev[x - bpp] : 0;
      let v = row[x];
      if (f === 1) v += a; else if (f === 2) v += b; else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const pp = a + b - c, pa = Math.abs(pp - a), pb = Math.abs(pp - b), pc = Math.abs(pp - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      cur[x] = v & 255;
    }
    for (let x = 0; x < width; x++) {
      out[(y * width + x) * 4] = cur[x * bpp]; out[(y * width + x) * 4 + 1] = cur[x * bpp + 1];
      out[(y * width + x) * 4 + 2] = cur[x * bpp + 2]; out[(y * width + x) * 4 + 3] = 255;
    }
    cur.copy(prev);
  }
  return { width, height, px: out };
}

// statistics of a screenshot region (screen pixels)
function region(img, [x0, y0, x1, y1]) {
  let coloured = 0, total = 0; const greys = new Set(), hues = new Set();
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(img.height, Math.ceil(y1)); y++) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(img.width, Math.ceil(x1)); x++) {
      const o = (y * img.width + x) * 4, r = img.px[o], g = img.px[o + 1], b = img.px[o + 2];
      const mx = Math.max(r, g, b), mn = Math.min(r, g, b); total++;
      if (mx - mn > 60) {
        coloured++;
        let h = mx === r ? (g - b) / (mx - mn) : mx === g ? 2 + (b - r) / (mx - mn) : 4 + (r - g) / (mx - mn);
        hues.add(Math.round(((h * 60 + 360) % 360) / 20));   // 18 hue bins
      } else if (mx - mn <= 2) greys.add(mx);
    }
  }
  return { total, coloured, hueBins: hues.size, greyLevels: greys.size };
}

// Every browser launched, so that a failure closes them all: a Chromium left open keeps node (and CI) alive.
const browsers = [];
async function launch(args) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hd-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, { executablePath: chromiumPath, headless: true,
    args: [...base, ...args], viewport: { width: 1600, height: 1000 }, deviceScaleFactor: 1 });
  browsers.push(ctx);
  return ctx;
}

// (data-it-per-s is dataset.itPerS: the DOM camel-cases data attributes)
const status = page => page.evaluate(() => ({ ...document.getElementById('hd-status').dataset, now: performance.now() }));

async function main() {
  if (!fs.existsSync(path.join(dist, 'pkg', 'hyperdistill_bg.wasm'))) fail('web/dist is missing: run web/build.sh first');
  fs.mkdirSync(outDir, { recursive: true });
  const server = await serve();
  const url = `http://127.0.0.1:${server.address().port}/`;
  const result = { url };
  const wasm = path.join(dist, 'pkg', 'hyperdistill_bg.wasm');
  result.wasm_bytes = fs.statSync(wasm).size;
  result.wasm_gzip_bytes = zlib.gzipSync(fs.readFileSync(wasm), { level: 9 }).length;
  try {
    // 1. with WebGPU: the app starts, distils, draws
    const ctx = await launch(webgpu);
    const page = ctx.pages()[0] ?? await ctx.newPage();
    const logs = [];
    page.on('console', m => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', e => logs.push(`pageerror: ${e}`));
    const t0 = Date.now();
    await page.goto(url);
    let s, firstFrame = null, firstSnapshot = null, firstDisk = null;
    while (true) {
      s = await status(page);
      if (firstFrame === null && Number(s.frames ?? 0) >= 1) firstFrame = s.now;
      if (firstSnapshot === null && Number(s.iteration ?? -1) >= 0) firstSnapshot = s.now;
      // the first legible disk: drawn, with its points spread (auto radial scale: median real point near ρ = ½)
      if (firstDisk === null && Number(s.diskPoints ?? 0) > 0 && Number(s.diskMedianRadius) > 0.3 && Number(s.diskMedianRadius) < 0.8) firstDisk = s.now;
      if (s.state === 'no-webgpu' || s.state === 'failed' || s.error) break;
      if (Number(s.iteration ?? -1) >= wantIterations && s.diskRect) break;
      if (Date.now() - t0 > timeoutMs) break;
      await new Promise(r => setTimeout(r, 250));
    }
    fs.writeFileSync(path.join(outDir, 'console.log'), logs.join('\n'));
    Object.assign(result, {
      state: s.state, adapter: s.adapter, dataset: s.dataset, iteration: Number(s.iteration), it_per_s: Number(s.itPerS),
      frame_ms: Number(s.frameMs), step_s: Number(s.stepS), loss: Number(s.loss), disk_points: Number(s.diskPoints),
      first_frame_ms: firstFrame && Math.round(firstFrame), first_snapshot_ms: firstSnapshot && Math.round(firstSnapshot),
      first_legible_disk_ms: firstDisk && Math.round(firstDisk), disk_median_radius: Number(s.diskMedianRadius),
    });
    if (s.state === 'no-webgpu') fail('Chromium gave no WebGPU adapter with ' + webgpu.join(' '));
    if (s.error) fail('the app reported: ' + s.error);
    if (!(Number(s.iteration) >= wantIterations)) fail(`only ${s.iteration} iterations within ${timeoutMs / 1000} s (state ${s.state}); console in web/test-out/console.log`);
    if (!(Number(s.diskPoints) > 0)) fail('the disk has no points');
    // let a few frames draw the latest state, then read the pixels
    await new Promise(r => setTimeout(r, 1500));
    s = await status(page);
    const canvas = await page.evaluate(() => { const r = document.getElementById('the_canvas').getBoundingClientRect(); return [r.left, r.top]; });
    const ppp = Number(s.pixelsPerPoint);
    const toScreen = str => { const [a, b, c, d] = str.split(',').map(Number); return [canvas[0] + a * ppp, canvas[1] + b * ppp, canvas[0] + c * ppp, canvas[1] + d * ppp]; };
    const shot = await page.screenshot({ path: path.join(outDir, 'webgpu.png') });
    const img = decodePng(shot);
    const disk = region(img, toScreen(s.diskRect));
    const grid = region(img, toScreen(s.gridRect));
    Object.assign(result, { disk_pixels: disk, grid_pixels: grid });
    // 10 classes in 10 hues: the disk must show many class colours; the grid is greyscale Fashion-MNIST
    if (disk.coloured < 300 || disk.hueBins < 5) fail(`the disk region does not look drawn: ${JSON.stringify(disk)}`);
    if (grid.greyLevels < 40) fail(`the synthetic grid does not look drawn: ${JSON.stringify(grid)}`);
    // legible and whole: the real points spread over the disk (auto scale), and the disk is inside the window at
    // 1600×1000 and at 1280×720
    if (!(result.disk_median_radius > 0.3 && result.disk_median_radius < 0.8)) fail(`the disk's real points are not spread: median radius ${result.disk_median_radius}`);
    const inside = (str, w, h) => { const [a, b, c, d] = toScreen(str); return a >= 0 && b >= 0 && c <= w && d <= h; };
    result.disk_rect_1600x1000 = s.diskRect;
    if (!inside(s.diskRect, 1600, 1000)) fail(`the disk is cut off at 1600×1000: ${s.diskRect}`);
    await page.setViewportSize({ width: 1280, height: 720 });
    await new Promise(r => setTimeout(r, 2500));
    s = await status(page);
    result.disk_rect_1280x720 = s.diskRect;
    await page.screenshot({ path: path.join(outDir, 'webgpu-1280x720.png') });
    if (!inside(s.diskRect, 1280, 720)) fail(`the disk is cut off at 1280×720: ${s.diskRect}`);
    await page.setViewportSize({ width: 1600, height: 1000 });
    await new Promise(r => setTimeout(r, 1500));
    // one class: a click on a synthetic point centres the disk on its class and shows it alone
    s = await status(page);
    const [px, py] = s.synPoint.split(',').map(Number);
    await page.mouse.click(canvas[0] + px * ppp, canvas[1] + py * ppp);
    await page.waitForFunction(() => /^Class/.test(document.getElementById('hd-status').dataset.centre ?? ''), null, { timeout: 30000 }).catch(() => {});
    await new Promise(r => setTimeout(r, 1500));
    s = await status(page);
    result.class_view = s.centre;
    await page.screenshot({ path: path.join(outDir, 'webgpu-one-class.png') });
    if (!/^Class/.test(s.centre ?? '')) fail(`a click on a synthetic point did not centre the disk on its class: ${s.centre}`);

    // 2. a shared link: the settings in the hash are the ones the session runs with
    const toml = '[distill]\nmethod = "dm"\nipc = 1\nwidth = 8\nbatch_real = 8\nseed = 7\n';
    await page.goto(url + '?paused#settings=' + encodeURIComponent(toml));
    await page.waitForFunction(() => document.getElementById('hd-status').dataset.settings?.startsWith('dm '), null, { timeout: 120000 })
      .catch(() => {});
    s = await status(page);
    result.shared_link = { settings: s.settings, running: s.running };
    if (s.settings !== 'dm ipc=1 width=8 batch_real=8 seed=7' || s.running !== 'false') fail(`the link's settings were not applied: ${JSON.stringify(result.shared_link)}`);

    // compare mode from a link: DM and DM+HDD side by side, two disks
    const cmp = 'compare = true\n[distill]\nmethod = "dm"\nipc = 1\nwidth = 8\nbatch_real = 8\nseed = 7\n';
    await page.goto(url + '#settings=' + encodeURIComponent(cmp));
    await page.waitForFunction(() => { const d = document.getElementById('hd-status').dataset; return Number(d.iteration ?? -1) >= 2 && d.disks === '2'; }, null, { timeout: 180000 })
      .catch(() => {});
    await new Promise(r => setTimeout(r, 1500));
    s = await status(page);
    result.compare = { iteration: Number(s.iteration), disks: Number(s.disks) };
    await page.screenshot({ path: path.join(outDir, 'webgpu-compare.png') });
    if (!(result.compare.iteration >= 2 && result.compare.disks === 2)) fail(`compare mode did not draw two disks: ${JSON.stringify(result.compare)}`);
    await page.goto(url + '?paused#settings=' + encodeURIComponent(toml));

    // 3. the file picker: a small IDX Fashion-MNIST-like set made here (10 classes, 6 train + 2 test images each)
    const idx = (magic, dims, body) => { const h = Buffer.alloc(4 + 4 * dims.length); h.writeUInt32BE(magic, 0); dims.forEach((d, i) => h.writeUInt32BE(d, 4 + 4 * i)); return Buffer.concat([h, body]); };
    const images = n => Buffer.from(Array.from({ length: n * 784 }, (_, i) => (i * 37 + Math.floor(i / 784) * 11) % 256));
    const labels = n => Buffer.from(Array.from({ length: n }, (_, i) => i % 10));
    const files = [
      ['train-images-idx3-ubyte.gz', zlib.gzipSync(idx(2051, [60, 28, 28], images(60)))],
      ['train-labels-idx1-ubyte.gz', zlib.gzipSync(idx(2049, [60], labels(60)))],
      ['t10k-images-idx3-ubyte', idx(2051, [20, 28, 28], images(20))],
      ['t10k-labels-idx1-ubyte', idx(2049, [20], labels(20))],
    ].map(([name, buffer]) => ({ name, mimeType: 'application/octet-stream', buffer }));
    // the page listens for picked files once the wasm module is loaded; `running` comes after that
    await page.waitForFunction(() => document.getElementById('hd-status').dataset.state === 'running', null, { timeout: 120000 })
      .catch(() => {});
    await page.setInputFiles('#files', files);
    await page.waitForFunction(() => /\(60 train images\)/.test(document.getElementById('hd-status').dataset.dataset ?? ''), null, { timeout: 120000 })
      .catch(() => {});
    s = await status(page);
    result.file_picker = { dataset: s.dataset, iteration: Number(s.iteration), error: s.error };
    if (!/\(60 train images\)/.test(s.dataset ?? '') || s.error) fail(`the picked files were not opened: ${JSON.stringify(result.file_picker)}`);
    // 100 classes (4 train images each): ten spread over the labels are shown
    const labels100 = n => Buffer.from(Array.from({ length: n }, (_, i) => i % 100));
    const files100 = [
      ['train-images-idx3-ubyte', idx(2051, [400, 28, 28], images(400))],
      ['train-labels-idx1-ubyte', idx(2049, [400], labels100(400))],
      ['t10k-images-idx3-ubyte', idx(2051, [100, 28, 28], images(100))],
      ['t10k-labels-idx1-ubyte', idx(2049, [100], labels100(100))],
    ].map(([name, buffer]) => ({ name, mimeType: 'application/octet-stream', buffer }));
    await page.setInputFiles('#files', files100);
    await page.waitForFunction(() => /\(400 train images\)/.test(document.getElementById('hd-status').dataset.dataset ?? ''), null, { timeout: 120000 })
      .catch(() => {});
    await new Promise(r => setTimeout(r, 2500));
    s = await status(page);
    result.hundred_classes = { dataset: s.dataset, picked: s.picked, error: s.error };
    await page.screenshot({ path: path.join(outDir, 'webgpu-100-classes.png') });
    if (s.picked !== '0,11,22,33,44,55,66,77,88,99' || s.error) fail(`a 100-class set should show ten classes spread over the labels: ${JSON.stringify(result.hundred_classes)}`);

    // 4. the autotuner in the browser (?autotune=on): before the session starts it times, asynchronously, the
    // candidate forward kernels of every convolution shape its networks have (the gradient passes wait for their
    // first use), keeps the picks in the page's local storage and makes the networks again with them; a second
    // visit finds them there and measures nothing
    const tiny = '[distill]\nmethod = "dm"\nipc = 1\nwidth = 8\nbatch_real = 8\nseed = 7\n';
    const tunedUrl = url + '?autotune=on&paused#settings=' + encodeURIComponent(tiny);
    const t4 = Date.now();
    await page.goto(tunedUrl);
    await page.waitForFunction(() => /^autotune on: /.test(document.getElementById('hd-status').dataset.kernels ?? ''), null, { timeout: 300000 }).catch(() => {});
    s = await status(page);
    const stored = await page.evaluate(() => Object.keys(localStorage).filter(k => k.startsWith('hyperdistill-autotune-'))
      .map(k => ({ key: k, picks: (localStorage.getItem(k).match(/^kernel = /mg) ?? []).length })));
    result.autotune = { first: s.kernels, seconds: (Date.now() - t4) / 1000, stored };
    const m1 = /^autotune on: (\d+) picks known, (\d+) measured now$/.exec(s.kernels ?? '');
    if (!m1 || Number(m1[2]) < 3 || stored.length !== 1 || stored[0].picks !== Number(m1[1]) || s.error)
      fail(`the browser's autotuner did not measure and store the session's shapes: ${JSON.stringify(result.autotune)}`);
    await page.goto('about:blank');
    await page.goto(tunedUrl);
    await page.waitForFunction(() => /^autotune on: /.test(document.getElementById('hd-status').dataset.kernels ?? ''), null, { timeout: 120000 }).catch(() => {});
    s = await status(page);
    result.autotune.second = s.kernels;
    if (s.kernels !== `autotune on: ${m1[1]} picks known, 0 measured now`) fail(`a second visit measured again: ${JSON.stringify(result.autotune)}`);

    // 5. ?kernelcheck: every kernel the autotuner may pick (ConvNet-3's and the pool's, the GEMM tilings among them)
    // run on this browser's GPU against the CPU reference (compiled to wasm), outputs poisoned with NaN first
    const t5 = Date.now();
    await page.goto('about:blank');
    await page.goto(url + '?kernelcheck&paused#settings=' + encodeURIComponent(tiny));
    await page.waitForFunction(() => /^(ok|FAILED):/.test(document.getElementById('hd-status').dataset.kernelCheck ?? ''), null, { timeout: 300000 }).catch(() => {});
    s = await status(page);
    result.kernel_check = { says: s.kernelCheck, seconds: (Date.now() - t5) / 1000 };
    const m5 = /^ok: (\d+) kernels of 12 \(pass, shape\) pairs against the reference/.exec(s.kernelCheck ?? '');
    if (!m5 || Number(m5[1]) <= 90) fail(`the kernel check in the browser: ${JSON.stringify(result.kernel_check)}`);
    await ctx.close();

    // 4. without WebGPU: the page explains what is needed instead of a blank canvas
    const plain = await launch([]);
    const p2 = plain.pages()[0] ?? await plain.newPage();
    await p2.goto(url);
    await p2.waitForFunction(() => ['no-webgpu', 'running', 'failed'].includes(document.getElementById('hd-status').dataset.state), null, { timeout: 60000 });
    const s2 = await status(p2);
    const shown = await p2.evaluate(() => getComputedStyle(document.getElementById('nogpu')).display !== 'none' && document.getElementById('nogpu').innerText);
    await p2.screenshot({ path: path.join(outDir, 'no-webgpu.png') });
    result.without_webgpu = { state: s2.state, page_says: shown && shown.split('\n')[0] };
    if (s2.state === 'running') result.without_webgpu.note = 'plain headless Chromium offered an adapter; the no-WebGPU page was not exercised';
    else if (s2.state !== 'no-webgpu' || !shown || !shown.includes('needs WebGPU')) fail(`without WebGPU the page is in state ${s2.state}`);
    await plain.close();
  } finally {
    for (const b of browsers) await b.close().catch(() => {});
    server.closeAllConnections();
    server.close();
    console.log(JSON.stringify(result));
  }
}
// A watchdog past every wait above: whatever hangs (a browser that will not close, a stuck page), the test
// ends with a failure instead of holding CI until its time limit.
const watchdog = setTimeout(() => { console.error('FAIL: the browser test did not finish; giving up'); process.exit(1); },
  timeoutMs + 900000);
watchdog.unref();
main().catch(e => { if (!process.exitCode) { console.error(e); process.exitCode = 1; } })
  .finally(() => process.exit(process.exitCode ?? 0));
