// Browser tests of the Cloud Ingest page (/cloud-ingest/app/) and of the
// Orthanc Explorer extension, against a running Orthanc + plugin + simulator.
//
// Run from UnitTests/Browser after `npm ci`:
//   ORTHANC_URL=http://127.0.0.1:8042 ORTHANC_USER=admin ORTHANC_PASSWORD=... \
//   STUDY_ID=<orthanc id of a sent study> HOSTILE_STUDY_ID=<sent study whose PatientName
//   is "<img src=x onerror=alert(1)>"> SCREENSHOT_DIR=/tmp/shots \
//   [CLOUD_CLIENT_SECRET=<the plugin's client secret, to check it never shows>] \
//   node --test test_webapp.mjs
// UnitTests/Integration/test_webapp.py sets all this up and runs it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required (see the header of this file)`);
  return value;
}

const ORTHANC_URL = required('ORTHANC_URL').replace(/\/+$/, '');
const USER = required('ORTHANC_USER');
const PASSWORD = required('ORTHANC_PASSWORD');
const STUDY_ID = required('STUDY_ID');
const HOSTILE_STUDY_ID = required('HOSTILE_STUDY_ID');
const SCREENSHOT_DIR = required('SCREENSHOT_DIR');
const CLIENT_SECRET = process.env.CLOUD_CLIENT_SECRET || '';
// Optional: users with the viewer and operator roles (CloudIngest.Permissions).
const VIEWER = process.env.VIEWER_USER ? [process.env.VIEWER_USER, process.env.VIEWER_PASSWORD] : null;
const OPERATOR = process.env.OPERATOR_USER
  ? [process.env.OPERATOR_USER, process.env.OPERATOR_PASSWORD] : null;
const HOSTILE_NAME = '<img src=x onerror=alert(1)>';
const APP_URL = `${ORTHANC_URL}/cloud-ingest/app/`;
const EXPLORER_URL = `${ORTHANC_URL}/app/explorer.html`;
const SEND_WAIT_MS = 60000;  // a resend of a small study must be back to "sent" within this

// Debian's chromium (playwright cannot download browsers here); playwright adds --headless itself.
const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
                        '--disable-component-update', '--disable-sync', '--no-first-run'];

let context;
let userDataDir;

before(async () => {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cloud-ingest-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    httpCredentials: { username: USER, password: PASSWORD },
    viewport: { width: 1440, height: 900 },
  });
  context.setDefaultTimeout(20000);
});

after(async () => {
  if (context) await context.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

// A page that records what must never happen: dialogs (an injected alert),
// uncaught script errors, console errors and CSP violations.
async function openPage(url) {
  const page = await context.newPage();
  const problems = { dialogs: [], pageErrors: [], consoleErrors: [] };
  page.on('dialog', (dialog) => {
    problems.dialogs.push(dialog.message());
    dialog.dismiss().catch(() => {});
  });
  page.on('pageerror', (error) => problems.pageErrors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.consoleErrors.push(message.text());
  });
  await page.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (event) => {
      window.__cspViolations.push(event.violatedDirective + ' ' + event.blockedURI);
    });
  });
  const response = await page.goto(url);
  return { page, problems, response };
}

async function waitForAppLoaded(page) {
  await page.waitForFunction(() => document.getElementById('status-version').textContent !== '…');
  await page.waitForSelector('#studies tr[data-orthanc-id]');
}

function rowSelector(id) {
  return `#studies tr[data-orthanc-id="${id}"]`;
}

async function apiJson(page, route) {
  const response = await page.request.get(`${ORTHANC_URL}/cloud-ingest/${route}`);
  assert.equal(response.status(), 200, `GET /cloud-ingest/${route}`);
  return response.json();
}

// Records every distinct text a cell takes, from now on, even across re-renders.
async function watchText(page, selector) {
  await page.evaluate((sel) => {
    window.__seen = window.__seen || {};
    const seen = [];
    window.__seen[sel] = seen;
    const note = () => {
      const element = document.querySelector(sel);
      const text = element ? element.textContent.trim() : null;
      if (text !== null && seen[seen.length - 1] !== text) seen.push(text);
    };
    note();
    new MutationObserver(note).observe(document.body,
                                       { subtree: true, childList: true, characterData: true });
  }, selector);
}

async function seenTexts(page, selector) {
  return page.evaluate((sel) => window.__seen[sel].slice(), selector);
}

// "queued" or "sending" seen after the click, and "sent" at the end.
async function waitForResendCycle(page, selector, pattern) {
  await page.waitForFunction(([sel, source]) => {
    const re = new RegExp(source);
    return window.__seen[sel].some((text) => re.test(text));
  }, [selector, pattern.inFlight.source], { timeout: SEND_WAIT_MS });
  await page.waitForFunction(([sel, source]) => {
    const seen = window.__seen[sel];
    const re = new RegExp(source);
    return seen.length > 1 && re.test(seen[seen.length - 1]);
  }, [selector, pattern.done.source], { timeout: SEND_WAIT_MS });
}

describe('Cloud Ingest page', () => {
  test('is served with a strict CSP and shows the plugin status, never a secret', async () => {
    const { page, problems, response } = await openPage(APP_URL);
    try {
      assert.equal(response.status(), 200);
      const csp = response.headers()['content-security-policy'] || '';
      assert.match(csp, /default-src 'self'/);
      await waitForAppLoaded(page);

      const status = await apiJson(page, 'status');
      assert.equal(await page.textContent('#status-version'), status.version);
      assert.equal(await page.textContent('#status-enabled'), 'yes');
      assert.equal(await page.textContent('#status-url'), status.url);
      assert.match(await page.textContent('#status-token'), /^valid until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
      // Studies were sent: the round trip to the API is measured and shown.
      assert.equal(typeof status.round_trip_ms, 'number');
      assert.match(await page.textContent('#status-upload-mode'),
        new RegExp(`^${status.upload_mode}, ${status.concurrency} uploads at a time, round trip \\d+(\\.\\d)? ms$`));
      // No SendWindows in this configuration: automatic sends may start at any time.
      assert.equal(status.send_windows, null);
      assert.equal(await page.textContent('#status-windows'), 'none: automatic sends may start any time');
      const sentCount = Number(await page.textContent('#queue-counts li[data-state="sent"] .count'));
      assert.ok(sentCount >= 2, `at least the two sent studies are counted, got ${sentCount}`);
      assert.ok(Number((await page.textContent('#total-studies')).replace(/\D/g, '')) >= 2);

      const html = await page.content();
      for (const word of ['client_secret', 'ClientSecret', 'access_token']) {
        assert.ok(!html.includes(word), `the page holds "${word}"`);
      }
      if (CLIENT_SECRET) {
        assert.ok(!html.includes(CLIENT_SECRET), 'the page holds the client secret');
        const raw = await (await page.request.get(`${ORTHANC_URL}/cloud-ingest/status`)).text();
        assert.ok(!raw.includes(CLIENT_SECRET), '/cloud-ingest/status holds the client secret');
      }

      // CSP: nothing inline in the page, nothing blocked, nothing broken.
      assert.equal(await page.locator('[style]').count(), 0, 'an element has a style attribute');
      const inlineHandlers = await page.evaluate(() => [...document.querySelectorAll('*')]
        .filter((el) => [...el.attributes].some((a) => a.name.startsWith('on'))).length);
      assert.equal(inlineHandlers, 0, 'an element has an inline event handler');
      assert.equal(await page.locator('script:not([src])').count(), 0, 'an inline script');
      assert.deepEqual(await page.evaluate(() => window.__cspViolations), []);
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });

      await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'webapp.png'), fullPage: true });
    } finally {
      await page.close();
    }
  });

  test('pauses and resumes the queue with its button', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      await page.waitForFunction(() => document.getElementById('status-paused').textContent === 'running');
      assert.equal(await page.textContent('#queue-toggle'), 'Pause queue');
      await page.click('#queue-toggle');
      await page.waitForFunction(() => document.getElementById('status-paused').textContent === 'paused');
      assert.equal((await apiJson(page, 'status')).paused, true);
      assert.equal(await page.textContent('#queue-toggle'), 'Resume queue');
      await page.click('#queue-toggle');
      await page.waitForFunction(() => document.getElementById('status-paused').textContent === 'running');
      assert.equal((await apiJson(page, 'status')).paused, false);
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('is reached from /cloud-ingest/app/ and /cloud-ingest/app alike', async () => {
    // Orthanc drops a trailing slash before it matches a plugin route, so both
    // spellings reach the plugin the same way: both must land on a working page.
    for (const url of [APP_URL, `${ORTHANC_URL}/cloud-ingest/app`]) {
      const { page, problems } = await openPage(url);
      try {
        assert.match(new URL(page.url()).pathname, /^\/cloud-ingest\/app\/(index\.html)?$/, url);
        await waitForAppLoaded(page);
        assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] }, url);
      } finally {
        await page.close();
      }
    }
  });

  test('lists the sent study with its state, progress and a Resend button', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      const row = page.locator(rowSelector(STUDY_ID));
      await row.waitFor();
      const study = await apiJson(page, `studies/${STUDY_ID}`);
      assert.equal(study.state, 'sent');
      assert.equal(await row.locator('.state').textContent(), 'sent');
      assert.equal(await row.getAttribute('data-state'), 'sent');
      assert.equal(await row.locator('.patient-name').textContent(), study.patient_name);
      assert.equal(await row.locator('.patient-id').textContent(), study.patient_id);
      assert.equal(await row.locator('.order-id').textContent(), study.order_id);
      assert.equal(await row.locator('.progress-text').textContent(),
                   `${study.instances_total}/${study.instances_total}`);
      assert.ok(study.instances_total > 0);
      const bar = row.locator('progress');
      assert.equal(await bar.evaluate((el) => el.value === el.max), true, 'the bar is full');
      assert.equal(await row.locator('button.resend').textContent(), 'Resend');
      assert.equal(await row.locator('button.cancel').isHidden(), true, 'no Cancel for a sent study');
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('Resend queues the study again and the row follows it back to "sent"', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      const before = await apiJson(page, `studies/${STUDY_ID}`);
      assert.equal(before.state, 'sent');
      const cell = `${rowSelector(STUDY_ID)} td.state`;
      await watchText(page, cell);

      const [request] = await Promise.all([
        page.waitForRequest((r) => r.method() === 'POST' &&
                                   r.url() === `${ORTHANC_URL}/cloud-ingest/studies/${STUDY_ID}/send`),
        page.click(`${rowSelector(STUDY_ID)} button.resend`),
      ]);
      assert.equal(request.postData(), '{}');
      // The plugin refuses POSTs that are not JSON (415): the page must say so.
      assert.match((await request.allHeaders())['content-type'] || '', /^application\/json\b/);
      const answer = await request.response();
      assert.equal(answer.status(), 202);

      await waitForResendCycle(page, cell, { inFlight: /^(queued|sending)$/, done: /^sent$/ });
      const seen = await seenTexts(page, cell);
      assert.equal(seen[0], 'sent');
      assert.ok(seen.slice(1).some((s) => s === 'queued' || s === 'sending'), seen.join(' > '));

      // The server agrees: a new send cycle ran and ended in "sent".
      const afterSend = await apiJson(page, `studies/${STUDY_ID}`);
      assert.equal(afterSend.state, 'sent');
      assert.notDeepEqual(afterSend.history, before.history, 'no new history after the resend');
      const events = afterSend.history.map((h) => h.event);
      assert.ok(events.lastIndexOf('sent') > events.lastIndexOf('queued'), events.join(','));
      assert.equal(await page.textContent(`${rowSelector(STUDY_ID)} .progress-text`),
                   `${afterSend.instances_total}/${afterSend.instances_total}`);
      assert.equal(await page.isHidden('#banner'), true);
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('Preview shows what an automatic send would do now, as GET /preview says', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      assert.equal(await page.isHidden('#preview'), true);
      const expected = await apiJson(page, `studies/${STUDY_ID}/preview`);
      await page.click(`${rowSelector(STUDY_ID)} button.preview`);
      await page.locator('#preview').waitFor({ state: 'visible' });
      // Sent and not changed since: an automatic send would not go, and the page says why.
      assert.equal(expected.would_send, false);
      assert.equal(await page.textContent('#preview-would-send'), 'no');
      const reasons = await page.locator('#preview-blocked li').allTextContents();
      assert.deepEqual(reasons, expected.blocked_by);
      assert.ok(reasons.some((r) => /^unchanged\b/.test(r)), reasons.join(' | '));
      assert.equal(await page.textContent('#preview-mode'),
                   `${expected.mode}, ${expected.connections} uploads at a time`);
      assert.match(await page.textContent('#preview-content'),
                   new RegExp(`^${expected.series} series, ${expected.instances} instances, `));
      assert.equal(await page.textContent('#preview-study-uid'),
                   expected.order_metadata.study_instance_uid);
      assert.equal(await page.getAttribute('#preview-study-uid', 'data-deidentified'), 'false');
      assert.deepEqual(await page.locator('#preview-order tbody td.mono').allTextContents(),
                       Object.keys(expected.order_metadata));
      await page.click('#preview-close');
      assert.equal(await page.isHidden('#preview'), true);
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('Preview of a de-identified study shows original and pseudonym side by side', async () => {
    // What /preview answers with de-identification on is checked against Orthanc in
    // test_deidentify.py; here such an answer is handed to the page to see how it shows it.
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      const real = await apiJson(page, `studies/${STUDY_ID}/preview`);
      const uid = real.order_metadata.study_instance_uid;
      const pseudonym = '2.25.201867534512394719283746501928374650';
      await page.route(`${ORTHANC_URL}/cloud-ingest/studies/${STUDY_ID}/preview`, (route) =>
        route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({
          ...real,
          deidentify: { study_instance_uid: { original: uid, pseudonym },
                        patient_id: { original: 'PID-7', pseudonym: 'a1b2c3d4e5f6' } } }) }));
      await page.click(`${rowSelector(STUDY_ID)} button.preview`);
      await page.waitForFunction(
        () => document.getElementById('preview-study-uid').dataset.deidentified === 'true');
      assert.equal(await page.textContent('#preview-study-uid'), `${uid} → ${pseudonym}`);
      assert.equal(await page.textContent('#preview-patient-id'), 'PID-7 → a1b2c3d4e5f6');
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('Bulk resend queues the newest sent study and the row follows it back to "sent"', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      await page.locator('#bulk').waitFor({ state: 'visible' });
      const newest = (await apiJson(page, 'studies?state=sent&limit=1')).studies[0];
      const cell = `${rowSelector(newest.orthanc_id)} td.state`;
      await watchText(page, cell);
      await page.selectOption('#bulk-state', 'sent');
      await page.fill('#bulk-limit', '1');
      const [request] = await Promise.all([
        page.waitForRequest((r) => r.method() === 'POST' &&
                                   r.url() === `${ORTHANC_URL}/cloud-ingest/studies/send`),
        page.click('#bulk-submit'),
      ]);
      assert.deepEqual(JSON.parse(request.postData()), { limit: 1, state: 'sent' });
      const answer = await request.response();
      assert.equal(answer.status(), 202);
      const body = await answer.json();
      assert.equal(body.queued, 1);
      assert.equal(body.studies[0].orthanc_id, newest.orthanc_id);
      await page.waitForFunction(
        () => /^1 study queued for sending: /.test(document.getElementById('notice').textContent));
      await waitForResendCycle(page, cell, { inFlight: /^(queued|sending)$/, done: /^sent$/ });
      const afterSend = await apiJson(page, `studies/${newest.orthanc_id}`);
      assert.equal(afterSend.state, 'sent');
      assert.equal(afterSend.trigger, 'manual');
      assert.equal(await page.isHidden('#banner'), true);
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('shows a hostile PatientName as text', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      const row = page.locator(rowSelector(HOSTILE_STUDY_ID));
      await row.waitFor();
      assert.equal(await row.locator('.patient-name').textContent(), HOSTILE_NAME);
      assert.equal(await page.locator('#studies img').count(), 0, 'an <img> was created');
      assert.equal(await page.locator('img').count(), 0, 'an <img> was created');
      // Two refresh cycles later still nothing has run.
      await page.waitForTimeout(4500);
      assert.equal(await page.locator('img').count(), 0);
      assert.deepEqual(problems.dialogs, [], 'a dialog fired');
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('filters by state and pages with limit and offset', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      assert.equal(await page.isDisabled('#prev-page'), true, 'no previous page at offset 0');

      const failedRequest = page.waitForRequest((r) => r.url().includes('/cloud-ingest/studies?') &&
                                                       r.url().includes('state=failed'));
      await page.selectOption('#state-filter', 'failed');
      const url = new URL((await failedRequest).url());
      assert.equal(url.pathname, '/cloud-ingest/studies');
      assert.equal(url.searchParams.get('offset'), '0');
      assert.ok(Number(url.searchParams.get('limit')) >= 25);
      await page.waitForSelector(rowSelector(STUDY_ID), { state: 'detached' });
      const failedStates = await page.locator('#studies tbody tr').evaluateAll(
        (rows) => rows.map((r) => r.dataset.state));
      assert.ok(failedStates.every((s) => s === 'failed'), failedStates.join(','));
      if (failedStates.length === 0) {
        assert.equal(await page.isVisible('#studies-empty'), true);
      }
      assert.match(page.url(), /#state=failed$/);

      await page.selectOption('#state-filter', 'sent');
      await page.waitForSelector(rowSelector(STUDY_ID));
      await page.waitForSelector(rowSelector(HOSTILE_STUDY_ID));
      const sentStates = await page.locator('#studies tbody tr').evaluateAll(
        (rows) => rows.map((r) => r.dataset.state));
      assert.ok(sentStates.length >= 2 && sentStates.every((s) => s === 'sent'), sentStates.join(','));
      assert.equal(await page.isHidden('#studies-empty'), true);

      // Fewer studies than a page: no next page; the counter says how many.
      assert.equal(await page.isDisabled('#next-page'), true);
      assert.match(await page.textContent('#page-info'), new RegExp(`^Studies 1–${sentStates.length}`));

      // The filter survives a reload (kept in the URL's hash).
      await page.reload();
      await waitForAppLoaded(page);
      assert.equal(await page.inputValue('#state-filter'), 'sent');
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('shows API errors in a banner and clears it when the API recovers', async () => {
    const { page, problems } = await openPage(APP_URL);
    try {
      await waitForAppLoaded(page);
      let failing = true;
      const listRoute = (url) => url.pathname === '/cloud-ingest/studies';
      await page.route(listRoute, (route) => (failing
        ? route.fulfill({ status: 500, contentType: 'application/json',
                          body: JSON.stringify({ error: 'database is <b>locked</b>', details: null }) })
        : route.continue()));
      await page.waitForSelector('#banner', { state: 'visible' });
      const text = await page.textContent('#banner-text');
      assert.match(text, /HTTP 500/);
      assert.match(text, /database is <b>locked<\/b>/, 'the error is shown as text');
      assert.equal(await page.locator('#banner b').count(), 0);
      assert.equal(await page.getAttribute('#banner', 'role'), 'alert');
      // The rows already shown stay.
      assert.equal(await page.locator(rowSelector(STUDY_ID)).count(), 1);

      failing = false;
      await page.waitForSelector('#banner', { state: 'hidden' });
      await page.unroute(listRoute);
      // The failed fetches were logged by the browser itself; nothing else.
      const others = problems.consoleErrors.filter((e) => !/status of 500/.test(e));
      assert.deepEqual({ ...problems, consoleErrors: others },
                       { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });
});

describe('Orthanc Explorer extension', () => {
  const STUDY_PAGE = `${EXPLORER_URL}#study?uuid=${STUDY_ID}`;

  test('the study page has "Send to cloud" and the cloud state; sending follows it', async () => {
    const { page, problems } = await openPage(STUDY_PAGE);
    try {
      const button = page.locator('#cloud-ingest-send');
      await button.waitFor({ state: 'visible' });
      assert.equal((await button.textContent()).trim(), 'Send to cloud');
      await page.waitForFunction(
        () => /^Cloud: sent\b/.test(document.getElementById('cloud-ingest-status').textContent));
      const status = await page.textContent('#cloud-ingest-status');
      const study = await apiJson(page, `studies/${STUDY_ID}`);
      assert.ok(status.includes(study.order_id), status);
      assert.ok(status.includes(`${study.instances_total}/${study.instances_total} instances`), status);
      // The explorer itself still works: the study's series are listed.
      await page.waitForSelector('#list-series li a');
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'explorer.png'), fullPage: true });

      await watchText(page, '#cloud-ingest-status');
      const [request] = await Promise.all([
        page.waitForRequest((r) => r.method() === 'POST' &&
                                   r.url() === `${ORTHANC_URL}/cloud-ingest/studies/${STUDY_ID}/send`),
        button.click(),
      ]);
      assert.match((await request.allHeaders())['content-type'] || '', /^application\/json\b/);
      assert.equal((await request.response()).status(), 202);
      await waitForResendCycle(page, '#cloud-ingest-status',
                               { inFlight: /^Cloud: (queued|sending)\b/, done: /^Cloud: sent\b/ });
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'explorer-after-send.png'),
                              fullPage: true });
      assert.deepEqual(problems, { dialogs: [], pageErrors: [], consoleErrors: [] });
    } finally {
      await page.close();
    }
  });

  test('an untracked study reads "not sent yet"', async () => {
    const page = await context.newPage();
    try {
      await page.route((url) => url.pathname === `/cloud-ingest/studies/${STUDY_ID}`, (route) => route.fulfill({
        status: 404, contentType: 'application/json',
        body: JSON.stringify({ error: 'not tracked', details: null }) }));
      await page.goto(STUDY_PAGE);
      await page.waitForFunction(
        () => document.getElementById('cloud-ingest-status').textContent === 'Cloud: not sent yet');
    } finally {
      await page.close();
    }
  });

  test('failing plugin routes do not break the explorer', async () => {
    const broken = await context.newPage();
    const errors = [];
    broken.on('pageerror', (error) => errors.push(error.message));
    broken.on('dialog', (dialog) => {
      errors.push('dialog: ' + dialog.message());
      dialog.dismiss().catch(() => {});
    });
    try {
      await broken.route((url) => url.pathname.startsWith('/cloud-ingest/'), (route) => route.fulfill({
        status: 500, contentType: 'text/plain', body: 'boom' }));
      await broken.goto(STUDY_PAGE);
      await broken.waitForSelector('#list-series li a');  // the explorer rendered the study
      await broken.waitForFunction(() => /^Cloud: status unavailable \(HTTP 500\)$/.test(
        document.getElementById('cloud-ingest-status').textContent));
      await broken.click('#cloud-ingest-send');
      await broken.waitForFunction(() => /^Cloud: sending failed to start \(HTTP 500\)$/.test(
        document.getElementById('cloud-ingest-status').textContent));
      // Navigation in the explorer still works.
      await broken.click('#study .patient-link');
      await broken.waitForSelector('#patient.ui-page-active');
      assert.deepEqual(errors, []);
    } finally {
      await broken.close();
    }
  });
});

// What each role sees (CloudIngest.Permissions): a browser logged in as that user.
describe('Roles', { skip: !VIEWER || !OPERATOR ? 'VIEWER_USER/OPERATOR_USER not set' : false }, () => {
  let browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
                                      args: CHROMIUM_FLAGS });
  });
  after(async () => {
    if (browser) await browser.close();
  });

  async function pageAs([username, password], url) {
    const userContext = await browser.newContext({ httpCredentials: { username, password } });
    const page = await userContext.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(url);
    return { page, errors, close: () => userContext.close() };
  }

  async function waitForRole(page, role) {
    await page.waitForFunction((r) => document.body.dataset.role === r, role);
  }

  test('a viewer sees the studies and receipts but no Resend or Cancel', async () => {
    const { page, errors, close } = await pageAs(VIEWER, APP_URL);
    try {
      await waitForRole(page, 'viewer');
      await waitForAppLoaded(page);
      const row = page.locator(rowSelector(STUDY_ID));
      await row.waitFor();
      assert.equal(await row.locator('button.resend').isHidden(), true);
      assert.equal(await row.locator('button.cancel').isHidden(), true);
      assert.equal(await page.isHidden('#bulk'), true, 'a viewer is offered bulk resend');
      assert.equal(await row.locator('button.preview').isVisible(), true);
      const receipt = row.locator('a.receipt');
      await receipt.waitFor({ state: 'visible' });
      const answer = await page.request.get(new URL(await receipt.getAttribute('href'), page.url()).href);
      assert.equal(answer.status(), 200);
      assert.ok((await answer.json()).files.length > 0);
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'webapp-viewer.png'), fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('an operator sees Resend', async () => {
    const { page, errors, close } = await pageAs(OPERATOR, APP_URL);
    try {
      await waitForRole(page, 'operator');
      await waitForAppLoaded(page);
      await page.locator(`${rowSelector(STUDY_ID)} button.resend`).waitFor({ state: 'visible' });
      await page.locator('#bulk').waitFor({ state: 'visible' });
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  test('in Orthanc Explorer a viewer gets the status line, an operator also the button', async () => {
    const studyPage = `${EXPLORER_URL}#study?uuid=${STUDY_ID}`;
    const viewer = await pageAs(VIEWER, studyPage);
    try {
      await viewer.page.waitForFunction(
        () => /^Cloud: sent\b/.test(document.getElementById('cloud-ingest-status').textContent));
      assert.equal(await viewer.page.locator('#cloud-ingest-send-item').isHidden(), true);
      assert.equal(await viewer.page.locator('#cloud-ingest-status-item').isVisible(), true);
    } finally {
      await viewer.close();
    }
    const operator = await pageAs(OPERATOR, studyPage);
    try {
      await operator.page.locator('#cloud-ingest-send').waitFor({ state: 'visible' });
    } finally {
      await operator.close();
    }
  });
});
