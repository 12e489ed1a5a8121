// driver.mjs: one headless Chromium (Debian's, through playwright-core) showing
// the example page, driven by test/browser_test.go over stdin/stdout, one JSON
// object per line. Every request { id, op, ... } gets one reply { id, ok, ... }
// or { id, ok: false, error: { message } }.
//
//   launch   { executablePath, url, token, timeoutMs? } -> {}  start Chromium, put token in
//            localStorage before the app's scripts run, open url and wait for it to load
//   waitText { testid, text, timeoutMs? }  -> {}  until [data-testid=testid] reads exactly text
//   waitFor  { what, body, arg?, timeoutMs? } -> { value }  until function(arg) { body } is truthy
//            in the page (Playwright's waitForFunction: polls, no fixed sleep)
//   eval     { body, arg? }                -> { value } of function(arg) { body } in the page
//   fill     { testid, value }             -> {}  type into an input
//   click    { testid }                    -> {}
//   network  {}                            -> { list: [{ kind: 'request'|'websocket', url }] } for /socket.io/
//   close    {}                            -> {}
// The page's console and errors go to stderr, which the test prints when it fails.
import { chromium } from 'playwright-core';
import readline from 'node:readline';

let browser = null;
let page = null;
const network = [];

const log = (...a) => process.stderr.write(a.join(' ') + '\n');
const byTestId = (id) => `[data-testid="${id}"]`;
const pageFn = (body) => new Function('arg', body);

const ops = {
  async launch(r) {
    browser = await chromium.launch({ executablePath: r.executablePath, headless: true, timeout: r.timeoutMs ?? 30000 });
    const context = await browser.newContext();
    await context.addInitScript((token) => localStorage.setItem('token', token), r.token);
    page = await context.newPage();
    page.on('console', (m) => log(`[page ${m.type()}]`, m.text()));
    page.on('pageerror', (e) => log('[page error]', e.message));
    page.on('request', (q) => {
      if (q.url().includes('/socket.io/')) network.push({ kind: 'request', method: q.method(), url: q.url() });
    });
    page.on('websocket', (ws) => {
      network.push({ kind: 'websocket', url: ws.url() });
      ws.on('close', () => log('[websocket closed]', ws.url()));
    });
    await page.goto(r.url, { waitUntil: 'load', timeout: r.timeoutMs ?? 30000 });
    return {};
  },
  async waitText(r) {
    const sel = byTestId(r.testid);
    try {
      await page.waitForFunction(
        ([s, want]) => document.querySelector(s)?.textContent === want,
        [sel, r.text],
        { timeout: r.timeoutMs ?? 10000, polling: 50 },
      );
    } catch (err) {
      const now = await page.$eval(sel, (e) => e.textContent).catch(() => '(no such element)');
      throw new Error(`${sel} did not read ${JSON.stringify(r.text)} within ${r.timeoutMs ?? 10000} ms; it reads ${JSON.stringify(now)}`);
    }
    return {};
  },
  async waitFor(r) {
    try {
      const h = await page.waitForFunction(pageFn(r.body), r.arg ?? null, { timeout: r.timeoutMs ?? 10000, polling: 50 });
      return { value: await h.jsonValue() };
    } catch (err) {
      throw new Error(`${r.what ?? r.body}: not within ${r.timeoutMs ?? 10000} ms (${String(err.message ?? err).split('\n')[0]})`);
    }
  },
  async eval(r) {
    return { value: await page.evaluate(pageFn(r.body), r.arg ?? null) };
  },
  async fill(r) {
    await page.fill(byTestId(r.testid), r.value);
    return {};
  },
  async click(r) {
    await page.click(byTestId(r.testid));
    return {};
  },
  async network() {
    return { list: network };
  },
  async close() {
    if (browser) await browser.close();
    browser = null;
    return {};
  },
};

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let r;
  try {
    r = JSON.parse(line);
  } catch {
    return;
  }
  try {
    const fn = ops[r.op];
    if (!fn) throw new Error(`unknown op ${r.op}`);
    if (r.op !== 'launch' && !page) throw new Error('launch first');
    reply({ ok: true, ...(await fn(r)), id: r.id });
  } catch (err) {
    reply({ id: r.id, ok: false, error: { message: String(err.message ?? err) } });
  }
});
rl.on('close', async () => {
  if (browser) await browser.close().catch(() => {});
  process.exit(0);
});
