// Drive the what-if widget in headless Chromium.  Usage:
//   node check.mjs <base-url> <scenario.json>
// scenario: {"edits": [[itemid, value], ...], "read": [itemid, ...], "nowasm": bool, "repeat": n}
// Prints JSON: {engine, values: {itemid: value}, ms: [...], errors: [...]}.
import { chromium } from 'playwright-core';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [base, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(readFileSync(scenarioFile, 'utf8'));
const profile = mkdtempSync(join(tmpdir(), 'whatif-chromium-'));
// A fresh profile directory per run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') { errors.push(m.text()); } });
  if (scenario.nowasm) {
    // A browser without WebAssembly: the widget must fall back to its plain-JS path.
    await page.addInitScript(() => { delete window.WebAssembly; });
  }
  await page.goto(base + '/index.html');
  await page.waitForSelector('#whatif[data-ready="1"]', { timeout: 20000 });
  const engine = await page.getAttribute('#whatif', 'data-engine');
  const ms = [];
  const repeat = scenario.repeat || 1;
  let updates = 0;
  for (let r = 0; r < repeat; r++) {
    for (const [itemid, value] of scenario.edits) {
      await page.fill(`input[data-itemid="${itemid}"]`, String(value + (r % 2 ? 0 : 0)));
      updates++;
      await page.waitForFunction((n) => {
        const el = document.querySelector('#whatif');
        return Number(el.dataset.updates || 0) >= n && !el.dataset.busy;
      }, updates, { timeout: 20000 });
      ms.push(Number(await page.getAttribute('#whatif', 'data-lastms')));
    }
  }
  const values = {};
  for (const itemid of scenario.read) {
    const v = await page.getAttribute(`td.whatif-final[data-itemid="${itemid}"]`, 'data-value');
    values[itemid] = v === '' ? null : Number(v);
  }
  console.log(JSON.stringify({ engine, values, ms, errors }));
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
