// @keystate-test once: the page runs the browser build (wasm) whatever TEST_BACKEND says.
// S3Storage in a browser: headless Chromium (scripts/browser.mjs) runs a page
// bundled with esbuild (keystate's browser entry, keystate/s3 and the AWS
// SDK's browser build) that checkpoints to the S3 gateway on another origin,
// allowed by the bucket's CORS rules, multipart upload included, and restores
// from it; a second writer is refused there as in Node. Skipped, with a
// notice, without Chromium or versitygw. Node only (it drives the browser).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PutBucketCorsCommand } from '@aws-sdk/client-s3';
import * as esbuild from 'esbuild';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ensureChromium, launch, serve } from '../scripts/browser.mjs';
import { ACCESS_KEY, S3Gateway, SECRET_KEY } from './_s3.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const B = suite('S3Storage in a browser');
const chromium = ensureChromium();
const gw = chromium.ok ? await S3Gateway.start() : null;
if (!chromium.ok) console.log(`S3 browser test SKIPPED: ${chromium.reason}`);

if (gw) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'keystate-s3-page-'));
  B('a page checkpoints to S3 across origins (CORS), in parts, and restores; a second writer is refused', async () => {
    await esbuild.build({
      entryPoints: [path.join(here, 'fixtures', 's3-browser', 'page.js')],
      bundle: true, format: 'esm', platform: 'browser', target: 'es2022', outfile: path.join(out, 'page.js'), logLevel: 'warning',
    });
    fs.writeFileSync(path.join(out, 'index.html'), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="./page.js"></script>\n');
    const server = await serve({ '/': out, '/wasm/': path.join(here, '..', 'dist', 'wasm') });
    const bucket = 'browser';
    await gw.bucket(bucket);
    // What a page needs from the endpoint: its origin allowed, and ETag (conditional writes) and Date (lease age) readable.
    await gw.client().send(new PutBucketCorsCommand({
      Bucket: bucket,
      CORSConfiguration: { CORSRules: [{ AllowedOrigins: [server.url], AllowedMethods: ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'], AllowedHeaders: ['*'], ExposeHeaders: ['ETag', 'Date'] }] },
    }));
    const browser = await launch();
    try {
      const page = await browser.context.newPage();
      const result = new Promise<string>((resolve) => page.on('console', (m) => {
        const t = m.text();
        if (t.startsWith('RESULT ') || t.startsWith('FAILED ')) resolve(t);
      }));
      const config = { endpoint: gw.endpoint, bucket, accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY };
      await page.goto(`${server.url}/#${encodeURIComponent(JSON.stringify(config))}`);
      const line = await Promise.race([result, new Promise<string>((r) => setTimeout(() => r('FAILED timeout'), 60_000))]);
      assert.ok(line.startsWith('RESULT '), line);
      const r = JSON.parse(line.slice(7));
      assert.is(r.backend, 'wasm');
      assert.equal(r.kinds, ['full', 'incremental']);
      assert.is(r.parts, 2, 'the full checkpoint went up in two parts');
      assert.is(r.second, 'STORAGE_LOCKED');
      assert.is(r.listed.length, 2);
      assert.equal(r.metadata, { where: 'browser' });
      assert.equal(r.values, ['0:aaaa', null, '7999:r', 'yes']);
    } finally {
      await browser.close();
      await server.close();
    }
  });
  B.after(async () => {
    fs.rmSync(out, { recursive: true, force: true });
    await gw.stop();
  });
}

B.run();
