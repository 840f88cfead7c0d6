// The dashboard's scenarios in one real Chromium, run by tests/tests/integration/browser.rs
// (which starts Redis, a worker and `workq serve --token`, and passes everything through
// the environment). Prints one JSON line per scenario, {"scenario", "ok", "error"?}, and
// asks the Rust side for what only it can see with a JSON line {"ask": ...} (the queue's
// stats as Redis has them; a claim by the worker), whose answer is the next line on stdin. Exits 1 if a scenario failed.
//
// Environment: WORKQ_URL (http://ADDR of workq serve), WORKQ_TOKEN, WORKQ_QUEUE,
// WORKQ_FAILED_ID (a FAILED job that succeeds when retried), WORKQ_HTML_ID (a job whose
// input is {"html": "<img src=x onerror=...><b>bold</b>"}), WORKQ_SHOTS (the screenshots' folder),
// WORKQ_CHROMIUM (the browser), WORKQ_BIN (the workq binary, which enqueues jobs while the
// page is open) and WORKQ_REDIS_URL (its --redis).

import { execFile } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set`);
  return v;
};
const BASE = env('WORKQ_URL');
const TOKEN = env('WORKQ_TOKEN');
const QUEUE = env('WORKQ_QUEUE');
const FAILED_ID = env('WORKQ_FAILED_ID');
const HTML_ID = env('WORKQ_HTML_ID');
const SHOTS = env('WORKQ_SHOTS');
const CHROMIUM = process.env.WORKQ_CHROMIUM || '/usr/bin/chromium';
const WORKQ = env('WORKQ_BIN');
const REDIS_URL = env('WORKQ_REDIS_URL');
// Every wait is for an event; this only turns a hang into a failure.
const WAIT = 30_000;

// --- The Rust side: one question, one answer line.
const answers = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(question) {
  process.stdout.write(JSON.stringify(question) + '\n');
  const { value, done } = await answers.next();
  if (done) throw new Error(`no answer to ${JSON.stringify(question)}`);
  return JSON.parse(value);
}

/** Enqueues `n` jobs of the test worker's `sleep` kind (`ms` long) with the workq
 * binary (`workq enqueue KIND --input JSON --queue Q`, which prints the id); their ids. */
async function enqueueSleeps(n, ms) {
  const ids = [];
  for (let i = 0; i < n; i += 1) {
    const args = ['--redis', REDIS_URL, 'enqueue', 'sleep', '--input', JSON.stringify({ ms }), '--queue', QUEUE];
    const { stdout } = await promisify(execFile)(WORKQ, args, { timeout: WAIT });
    const id = stdout.trim();
    check(/^[0-9A-Z]{26}$/.test(id), `workq enqueue printed ${JSON.stringify(stdout)}`);
    ids.push(id);
  }
  return ids;
}

function check(cond, what) {
  if (!cond) throw new Error(what);
}

// --- Selectors of the dashboard's contract (data-testid).
const tid = (id) => `[data-testid="${id}"]`;
const row = (queue) => `tr${tid('queue-row')}[data-queue="${queue}"]`;
const cell = (queue, name) => `${row(queue)} ${tid(name)}`;

/** Waits until the element of `selector` has the text `want` (trimmed): a string (that
 * text), a RegExp, or {includes: string}; returns the text. */
async function waitText(page, selector, want, timeout = WAIT) {
  const spec =
    want instanceof RegExp
      ? { kind: 're', source: want.source, flags: want.flags }
      : typeof want === 'object'
        ? { kind: 'includes', value: want.includes }
        : { kind: 'eq', value: String(want) };
  try {
    await page.waitForFunction(
      ({ selector, spec }) => {
        const el = document.querySelector(selector);
        if (!el) return false;
        const text = el.textContent.trim();
        if (spec.kind === 're') return new RegExp(spec.source, spec.flags).test(text);
        if (spec.kind === 'includes') return text.includes(spec.value);
        return text === spec.value;
      },
      { selector, spec },
      { timeout },
    );
  } catch (e) {
    const now = await page
      .locator(selector)
      .first()
      .textContent({ timeout: 1000 })
      .catch(() => '(no such element)');
    throw new Error(
      `${selector}: wanted ${JSON.stringify(spec)}, has ${JSON.stringify(now)} (${e.message.split('\n')[0]})`,
    );
  }
  return (await page.locator(selector).first().textContent()).trim();
}

/** Records in the page every text the element of `selector` takes from now on
 * (window.__seen), however the page re-renders it. */
async function recordTexts(page, selector) {
  await page.evaluate((selector) => {
    const read = () => document.querySelector(selector)?.textContent.trim();
    window.__seen = [read()];
    new MutationObserver(() => {
      const t = read();
      if (t !== undefined && t !== window.__seen[window.__seen.length - 1]) window.__seen.push(t);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  }, selector);
  return () => page.evaluate(() => window.__seen);
}

const count = async (page, queue, name) => {
  const text = (await page.locator(cell(queue, name)).textContent({ timeout: WAIT })).trim();
  const n = Number(text.replace(/[,\s]/g, ''));
  check(Number.isInteger(n), `${cell(queue, name)} is not a count: ${JSON.stringify(text)}`);
  return n;
};

/** The CSRF token of the page's HTML shell. */
const csrf = (page) =>
  page.locator('meta[name="workq-csrf"]').getAttribute('content', { timeout: WAIT });

/** Clicks `button`, then the confirm dialog's `confirm`. */
async function clickConfirmed(page, button) {
  await page.locator(button).click({ timeout: WAIT });
  const dialog = page.locator(tid('confirm-dialog'));
  await dialog.waitFor({ state: 'visible', timeout: WAIT });
  await dialog.locator(tid('confirm')).click({ timeout: WAIT });
  await dialog.waitFor({ state: 'hidden', timeout: WAIT });
}

/** GET an API path with the context's session; the JSON body. */
async function api(context, path) {
  const r = await context.request.get(BASE + path, { timeout: WAIT });
  check(r.ok(), `GET ${path}: ${r.status()} ${await r.text()}`);
  return r.json();
}

/** The queue's entry of GET /api/queues, whatever its shape: a list or {queues: [...]}, of
 * entries named by `name` or `queue`, counts at the top or under `counts`. */
async function apiQueue(context, queue) {
  const body = await api(context, '/api/queues');
  const list = Array.isArray(body) ? body : body.queues ?? [];
  const q = list.find((e) => (e.name ?? e.queue) === queue);
  check(q, `/api/queues has no ${queue}: ${JSON.stringify(body)}`);
  const counts = { ...q, ...(q.counts ?? {}), ...(q.stats ?? {}) };
  return {
    raw: q,
    paused: Boolean(q.paused),
    ready: counts.ready,
    running: counts.running,
    succeeded: counts.succeeded ?? counts.retained_succeeded,
  };
}

/** The state of GET /api/jobs/{id}. */
async function apiState(context, id) {
  const body = await api(context, `/api/jobs/${id}`);
  return String(body.state ?? body.job?.state ?? '').toUpperCase();
}

/** Sets a marker in the page and counts its navigations from now on: a reload would lose
 * the one and add to the other. */
async function markPage(page) {
  await page.evaluate(() => {
    window.__marker = 'still the same page';
  });
  const nav = { count: 0 };
  const onNav = (frame) => {
    if (frame === page.mainFrame()) nav.count += 1;
  };
  page.on('framenavigated', onNav);
  return async () => {
    page.off('framenavigated', onNav);
    const marker = await page.evaluate(() => window.__marker);
    check(marker === 'still the same page', `the page was reloaded (marker: ${marker})`);
    check(nav.count === 0, `the page navigated ${nav.count} time(s)`);
  };
}

// --- The scenarios.

// 1. The overview shows a queue's counts changing while jobs run, without a reload.
async function overviewCountsLive({ page }) {
  await page.goto(BASE + '/', { timeout: WAIT });
  await page.locator(row(QUEUE)).waitFor({ timeout: WAIT });
  const before = await count(page, QUEUE, 'count-succeeded');
  const same = await markPage(page);
  const seenTexts = await recordTexts(page, cell(QUEUE, 'count-succeeded'));
  // Slow jobs (the worker runs two at once), enqueued while the page is open.
  const n = 6;
  const ids = await enqueueSleeps(n, 200);
  check(ids.length === n, `enqueued ${ids.length}`);
  await waitText(page, cell(QUEUE, 'count-succeeded'), String(before + n));
  await same();
  const seen = await seenTexts();
  await page.screenshot({ path: join(SHOTS, 'overview.png'), fullPage: true });
  return { before, after: before + n, values_seen: seen };
}

// 2. A FAILED job is retried from its page and becomes SUCCEEDED.
async function retryFailedJob({ page, context }) {
  await page.goto(`${BASE}/jobs/${FAILED_ID}`, { timeout: WAIT });
  await waitText(page, tid('job-state'), 'FAILED');
  await clickConfirmed(page, tid('action-retry'));
  await waitText(page, tid('job-state'), 'SUCCEEDED');
  const state = await apiState(context, FAILED_ID);
  check(state === 'SUCCEEDED', `the API says ${state}`);
  await page.screenshot({ path: join(SHOTS, 'job.png'), fullPage: true });
  return { state };
}

// 3. Pausing a queue stops its claims; resuming starts them.
async function pauseStopsClaims({ page, context }) {
  await page.goto(BASE + '/', { timeout: WAIT });
  await waitText(page, cell(QUEUE, 'paused'), 'active');
  await clickConfirmed(page, `${row(QUEUE)} ${tid('pause')}`);
  await waitText(page, cell(QUEUE, 'paused'), 'paused');
  const before = await apiQueue(context, QUEUE);
  check(before.paused, `the API says not paused: ${JSON.stringify(before.raw)}`);

  const n = 3;
  const enq = { ids: await enqueueSleeps(n, 50), ...(await ask({ ask: 'stats' })) };
  check(enq.stats.paused, 'Redis says the queue is not paused');
  // The worker has looked for work since the jobs were enqueued, and found none.
  const { stats } = await ask({ ask: 'claim-cycle' });
  check(stats.paused, 'Redis says the queue is not paused');
  check(stats.ready >= n, `Redis: ready ${stats.ready} < ${n}`);
  check(stats.running === 0, `Redis: running ${stats.running}`);
  check(stats.claimed === enq.stats.claimed, `Redis: claimed ${enq.stats.claimed} -> ${stats.claimed}`);
  check(stats.succeeded === enq.stats.succeeded, 'Redis: jobs succeeded while paused');
  const held = await apiQueue(context, QUEUE);
  check(held.ready >= n, `the API: ready ${held.ready}: ${JSON.stringify(held.raw)}`);
  check(held.running === 0, `the API: running ${held.running}`);
  check(held.succeeded === before.succeeded, `the API: succeeded ${before.succeeded} -> ${held.succeeded}`);
  for (const id of enq.ids) {
    const s = await apiState(context, id);
    check(s === 'ENQUEUED', `job ${id} is ${s} while the queue is paused`);
  }
  // The page shows the same.
  await waitText(page, cell(QUEUE, 'count-running'), '0');
  await waitText(page, cell(QUEUE, 'count-ready'), String(held.ready));
  const succeeded = await count(page, QUEUE, 'count-succeeded');

  await clickConfirmed(page, `${row(QUEUE)} ${tid('resume')}`);
  await waitText(page, cell(QUEUE, 'paused'), 'active');
  await waitText(page, cell(QUEUE, 'count-succeeded'), String(succeeded + n));
  for (const id of enq.ids) {
    const s = await apiState(context, id);
    check(s === 'SUCCEEDED', `job ${id} is ${s} after the resume`);
  }
  return { held: stats, succeeded_after: succeeded + n };
}

// 4. A job whose input holds HTML shows it as text.
async function inputShownAsText({ page }) {
  await page.goto(`${BASE}/jobs/${HTML_ID}`, { timeout: WAIT });
  const input = page.locator(tid('job-input'));
  await input.waitFor({ timeout: WAIT });
  await waitText(page, tid('job-input'), { includes: '<img src=x' });
  const text = await input.textContent();
  check(text.includes('<b>bold</b>'), `job-input: ${JSON.stringify(text)}`);
  check((await input.locator('img, b').count()) === 0, 'job-input holds elements made of the input');
  // The output (an echo of the input) is text too, and nothing anywhere ran the handler.
  const output = page.locator(tid('job-output'));
  await waitText(page, tid('job-output'), { includes: '<img src=x' });
  check((await output.locator('img, b').count()) === 0, 'job-output holds elements made of the output');
  check((await page.locator('img[src="x"]').count()) === 0, 'an <img src=x> is on the page');
  const xss = await page.evaluate(() => window.__xss);
  check(xss === undefined, `window.__xss is ${xss}`);
  return { input: text.trim().slice(0, 120) };
}

// 5. Actions without the token (no session) are refused with 401, and without the CSRF
//    header with 403; the queue's paused state does not change.
async function actionsNeedToken({ browser, page, context }) {
  const before = await apiQueue(context, QUEUE);
  check(!before.paused, 'the queue is paused before the scenario');
  const token = await csrf(page);
  check(token, 'no <meta name="workq-csrf"> in the page');

  const post = (p, path, headers) =>
    p.evaluate(
      async ({ path, headers }) => {
        const r = await fetch(path, { method: 'POST', headers, credentials: 'same-origin' });
        return r.status;
      },
      { path, headers },
    );
  const path = `/api/queues/${encodeURIComponent(QUEUE)}/pause`;

  const fresh = await browser.newContext();
  try {
    const stranger = await fresh.newPage();
    // Any page of the origin will do to fetch from it; it need not be the dashboard.
    await stranger.goto(BASE + '/api/queues', { timeout: WAIT });
    check((await fresh.cookies()).length === 0, 'the fresh context has a cookie');
    const bare = await post(stranger, path, {});
    const withCsrf = await post(stranger, path, { 'X-Workq-Csrf': token });
    check(bare === 401, `no session, no CSRF header: ${bare}`);
    check(withCsrf === 401, `no session, with the CSRF header: ${withCsrf}`);
    const get = await stranger.evaluate(async () => (await fetch('/api/queues')).status);
    check(get === 401, `GET /api/queues without a session: ${get}`);
  } finally {
    await fresh.close();
  }
  const noCsrf = await post(page, path, {});
  check(noCsrf === 403, `a session without the CSRF header: ${noCsrf}`);
  const wrongCsrf = await post(page, path, { 'X-Workq-Csrf': token + 'x' });
  check(wrongCsrf === 403, `a session with a wrong CSRF header: ${wrongCsrf}`);

  const after = await apiQueue(context, QUEUE);
  check(!after.paused, 'the queue got paused');
  const { stats } = await ask({ ask: 'stats' });
  check(!stats.paused, 'Redis says the queue got paused');
  // The same request with both goes through (resume: the queue is not paused, so
  // nothing changes).
  const ok = await post(page, `/api/queues/${encodeURIComponent(QUEUE)}/resume`, { 'X-Workq-Csrf': token });
  check(ok >= 200 && ok < 300, `a session with the CSRF header: ${ok}`);
  await page.goto(BASE + '/', { timeout: WAIT });
  await waitText(page, cell(QUEUE, 'paused'), 'active');
  return { no_session: 401, no_csrf: noCsrf, with_both: ok };
}

// 6. Every page, reached from the navigation, with a screenshot.
async function pages({ page }) {
  await page.goto(BASE + '/', { timeout: WAIT });
  await page.locator(tid('nav-workers')).click({ timeout: WAIT });
  await page.locator(tid('worker-row')).first().waitFor({ timeout: WAIT });
  check(new URL(page.url()).pathname === '/workers', `nav-workers went to ${page.url()}`);
  await page.screenshot({ path: join(SHOTS, 'workers.png'), fullPage: true });

  await page.locator(tid('nav-periodic')).click({ timeout: WAIT });
  await page.locator(tid('periodic-row')).first().waitFor({ timeout: WAIT });
  check(new URL(page.url()).pathname === '/periodic', `nav-periodic went to ${page.url()}`);
  await page.screenshot({ path: join(SHOTS, 'periodic.png'), fullPage: true });

  await page.locator(tid('nav-overview')).click({ timeout: WAIT });
  await page.locator(row(QUEUE)).waitFor({ timeout: WAIT });
  await page.locator(`${row(QUEUE)} ${tid('queue-link')}`).click({ timeout: WAIT });
  check(
    decodeURIComponent(new URL(page.url()).pathname) === `/queues/${QUEUE}`,
    `queue-link went to ${page.url()}`,
  );
  // The queue page opens on its ready jobs (none now): the succeeded tab has them all.
  await page.locator(tid('state-succeeded')).click({ timeout: WAIT });
  const jobRow = page.locator(`tr${tid('job-row')}[data-id]`);
  await jobRow.first().waitFor({ timeout: WAIT });
  const rows = await jobRow.count();
  await page.screenshot({ path: join(SHOTS, 'queue.png'), fullPage: true });
  const id = await jobRow.first().getAttribute('data-id');
  await jobRow.first().locator(tid('job-link')).click({ timeout: WAIT });
  await page.locator(tid('job-state')).waitFor({ timeout: WAIT });
  check(new URL(page.url()).pathname === `/jobs/${id}`, `job-link of ${id} went to ${page.url()}`);
  return { job_rows: rows };
}

const SCENARIOS = [
  ['overview-counts-live', overviewCountsLive],
  ['retry-failed-job', retryFailedJob],
  ['pause-stops-claims', pauseStopsClaims],
  ['input-shown-as-text', inputShownAsText],
  ['actions-need-token', actionsNeedToken],
  ['pages', pages],
];

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // CI runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox'],
  });
  let failures = 0;
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // Log in: the token sets the session cookie and sends us to the overview.
    const login = await page.goto(`${BASE}/login?token=${encodeURIComponent(TOKEN)}`, { timeout: WAIT });
    const cookies = await context.cookies();
    const landed = new URL(page.url()).pathname;
    if (!cookies.some((c) => c.name === 'workq_session') || landed !== '/') {
      throw new Error(
        `login: status ${login?.status()}, at ${page.url()}, cookies ${cookies.map((c) => c.name)}`,
      );
    }
    for (const [name, run] of SCENARIOS) {
      const started = Date.now();
      try {
        const detail = await run({ browser, context, page });
        if (errors.length) throw new Error(`errors in the page: ${errors.join('; ')}`);
        console.log(JSON.stringify({ scenario: name, ok: true, ms: Date.now() - started, ...detail }));
      } catch (e) {
        failures += 1;
        const shot = join(SHOTS, `failed-${name}.png`);
        await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
        console.log(
          JSON.stringify({ scenario: name, ok: false, ms: Date.now() - started, error: String(e.message ?? e), url: page.url(), screenshot: shot }),
        );
      }
      errors.length = 0;
    }
  } finally {
    await browser.close();
  }
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log(JSON.stringify({ scenario: 'setup', ok: false, error: String(e.message ?? e) }));
  process.exit(1);
});
