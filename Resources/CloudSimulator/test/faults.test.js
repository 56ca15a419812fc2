'use strict';

// Fault injection through POST /_sim/faults: status + Retry-After, delay,
// reset, "*", probability with a seed, on every endpoint including the PUT.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { startSimulator, stopAll, request, basic, Client } = require('./support/sim');
const { buildDicom, uid } = require('./support/dicom-writer');

let sim;
let api;
test.before(async () => {
  sim = await startSimulator(['--quiet']);
  api = new Client(sim);
});
test.after(stopAll);
test.beforeEach(async () => {
  await request('DELETE', `${sim.info.url}/_sim/faults`);
});

function tokenRequest() {
  return request('GET', `${sim.info.url}/auth/token?grant_type=client_credentials&scope=upload`, {
    headers: { Authorization: basic(sim.info.client_id, sim.info.client_secret) },
  });
}

async function newOrderRequest() {
  return request('GET', `${sim.info.url}/new-order`, { headers: await api.auth(), body: {} });
}

async function timed(promise) {
  const t = Date.now();
  const result = await promise;
  return { result, ms: Date.now() - t };
}

function assertInjected(r, status, retryAfter) {
  assert.equal(r.status, status);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(typeof r.json.error, 'string');
  assert.match(r.json.error_description, /injected/);
  assert.equal(r.headers['retry-after'], retryAfter === undefined ? undefined : String(retryAfter));
}

test('token: status faults with Retry-After, for exactly `count` calls', async () => {
  const queued = await api.faults({ endpoint: 'token', status: 503, count: 2, retry_after: 2 });
  assert.equal(queued.faults.length, 1);
  assert.equal(queued.faults[0].remaining, 2);
  assertInjected(await tokenRequest(), 503, 2);
  assertInjected(await tokenRequest(), 503, 2);
  assert.equal((await tokenRequest()).status, 200);
  assert.deepEqual((await request('GET', `${sim.info.url}/_sim/faults`)).json.faults, []);
  const injected = await api.events('fault_injected');
  assert.equal(injected.filter((e) => e.endpoint === 'token').length, 2);
});

test('new-order, upload and add-metadata: status faults; nothing happens meanwhile', async () => {
  await api.auth();
  const before = Object.keys((await api.studies()).orders).length;
  await api.faults({ endpoint: 'new-order', status: 429, retry_after: 1 });
  assertInjected(await newOrderRequest(), 429, 1);
  assert.equal(Object.keys((await api.studies()).orders).length, before, 'no order created by the refused call');
  assert.equal((await newOrderRequest()).status, 200);

  const orderId = await api.newOrder({});
  await api.faults({ endpoint: 'upload', status: 500 });
  const q = `order_id=${orderId}&filename=a.dcm`;
  assertInjected(await request('GET', `${sim.info.url}/upload?${q}`, { headers: await api.auth() }), 500);
  assert.equal((await request('GET', `${sim.info.url}/upload?${q}`, { headers: await api.auth() })).status, 200);

  await api.faults({ endpoint: 'add-metadata', status: 503, retry_after: 0 });
  const patch = async () =>
    request('PATCH', `${sim.info.url}/add-metadata?order_id=${orderId}`, { headers: await api.auth(), body: { a: 1 } });
  assertInjected(await patch(), 503, 0);
  assert.equal((await patch()).status, 200);
});

test('faults queue in order and match "*" for any endpoint', async () => {
  await api.auth();
  await api.faults([
    { endpoint: 'new-order', status: 503 },
    { endpoint: 'new-order', status: 429 },
  ]);
  assert.equal((await newOrderRequest()).status, 503);
  assert.equal((await newOrderRequest()).status, 429);
  assert.equal((await newOrderRequest()).status, 200);

  await api.faults({ endpoint: '*', status: 502, count: 3 });
  assert.equal((await tokenRequest()).status, 502);
  assert.equal((await newOrderRequest()).status, 502);
  const third = await newOrderRequest();
  assert.equal(third.json.error, 'bad_gateway');
  assert.equal((await tokenRequest()).status, 200);
  // /_sim/ routes are never faulted
  await api.faults({ endpoint: '*', status: 503 });
  assert.equal((await request('GET', `${sim.info.url}/_sim/health`)).status, 200);
});

test('put: a status fault refuses the upload before the store; the next PUT works', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const { url } = await api.uploadUrl(orderId, 'p.dcm', { content_type: 'application/dicom' });
  const file = buildDicom({ studyUid });
  await api.faults({ endpoint: 'put', status: 503, retry_after: 3 });
  assertInjected(await api.put(url, file), 503, 3);
  assert.equal((await api.studies()).studies[studyUid].batches.length, 0);
  assert.equal((await api.events('upload_ok')).filter((e) => e.key === `${orderId}/p.dcm`).length, 0);
  assert.equal((await api.put(url, file)).status, 200);
  assert.equal((await api.studies()).studies[studyUid].batches[0].instances.length, 1);
});

test('reset: the connection is dropped, for the API and for the PUT', async () => {
  await api.auth();
  await api.faults({ endpoint: 'new-order', reset: true });
  await assert.rejects(newOrderRequest(), (err) => ['ECONNRESET', 'EPIPE'].includes(err.code) || /hang up/.test(err.message));
  assert.equal((await newOrderRequest()).status, 200);

  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const { url } = await api.uploadUrl(orderId, 'r.dcm');
  const file = buildDicom({ studyUid, pixelBytes: 200000 });
  await api.faults({ endpoint: 'put', reset: true });
  await assert.rejects(api.put(url, file), (err) => ['ECONNRESET', 'EPIPE'].includes(err.code) || /hang up/.test(err.message));
  assert.equal((await api.studies()).studies[studyUid].batches.length, 0, 'nothing recorded');
  assert.equal((await api.put(url, file)).status, 200);
});

test('delay_ms delays the answer (alone or before a status), and a client that gives up gets nothing done', async () => {
  await api.auth();
  await api.faults({ endpoint: 'new-order', delay_ms: 700 });
  const slow = await timed(newOrderRequest());
  assert.equal(slow.result.status, 200, 'a pure delay then answers normally');
  assert.ok(slow.ms >= 650, `took ${slow.ms} ms`);

  await api.faults({ endpoint: 'token', delay_ms: 500, status: 503, retry_after: 1 });
  const both = await timed(tokenRequest());
  assertInjected(both.result, 503, 1);
  assert.ok(both.ms >= 450);

  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const { url } = await api.uploadUrl(orderId, 'd.dcm');
  await api.faults({ endpoint: 'put', delay_ms: 600 });
  const put = await timed(api.put(url, buildDicom({ studyUid })));
  assert.equal(put.result.status, 200);
  assert.ok(put.ms >= 550);

  // a client that times out during the delay: the order is not created
  const before = Object.keys((await api.studies()).orders).length;
  await api.faults({ endpoint: 'new-order', delay_ms: 1000 });
  await assert.rejects(
    request('GET', `${sim.info.url}/new-order`, { headers: await api.auth(), body: {}, timeoutMs: 300 }),
    /timeout/,
  );
  await new Promise((resolve) => setTimeout(resolve, 1000));
  assert.equal(Object.keys((await api.studies()).orders).length, before);
});

test('probability faults with a seed: repeatable, about that share, over the next `count` calls', async () => {
  await api.auth();
  const run = async () => {
    await api.faults({ endpoint: 'new-order', status: 503, probability: 0.3, seed: 42, count: 60 });
    const pattern = [];
    for (let i = 0; i < 60; i += 1) pattern.push((await newOrderRequest()).status);
    return pattern;
  };
  const first = await run();
  const failures = first.filter((s) => s === 503).length;
  assert.ok(failures >= 8 && failures <= 32, `${failures} failures of 60`);
  assert.ok(first.every((s) => s === 200 || s === 503));
  assert.equal((await newOrderRequest()).status, 200, 'the fault is used up after count calls');
  assert.deepEqual(await run(), first, 'the same seed gives the same pattern');

  // without count, a probability fault stays until cleared
  await api.faults({ endpoint: 'token', status: 503, probability: 1, seed: 1 });
  for (let i = 0; i < 5; i += 1) assert.equal((await tokenRequest()).status, 503);
  const listed = (await request('GET', `${sim.info.url}/_sim/faults`)).json.faults;
  assert.equal(listed.length, 1);
  assert.equal(listed[0].remaining, null);
  assert.equal(listed[0].fired, 5);
  await request('DELETE', `${sim.info.url}/_sim/faults`);
  assert.equal((await tokenRequest()).status, 200);
});

test('rate_bytes_per_s: the PUT body is read at that rate and stored whole', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const { url } = await api.uploadUrl(orderId, 's.dcm');
  const file = buildDicom({ studyUid, pixelBytes: 60000 });
  await api.faults({ endpoint: 'put', rate_bytes_per_s: 40000 });
  const slow = await timed(api.put(url, file));
  assert.equal(slow.result.status, 200);
  assert.ok(slow.ms >= 1200, `60 KB at 40 KB/s took ${slow.ms} ms`);
  const [ok] = (await api.events('upload_ok')).filter((e) => e.key === `${orderId}/s.dcm`);
  assert.equal(ok.bytes, file.length);
  assert.equal(ok.md5, crypto.createHash('md5').update(file).digest('hex'));
  const fast = await timed(api.put(url, file));
  assert.equal(fast.result.status, 200);
  assert.ok(fast.ms < slow.ms / 2, `unthrottled ${fast.ms} ms vs ${slow.ms} ms`);
});

test('headers: merged into the next upload answer only, after the signed Content-Type', async () => {
  const orderId = await api.newOrder({});
  await api.faults({ endpoint: 'upload', headers: { Host: 'other-bucket.example.com', 'x-extra': '1' } });
  const hit = await api.uploadUrl(orderId, 'h.dcm', { content_type: 'application/dicom' });
  assert.deepEqual(hit.headers, { 'Content-Type': 'application/dicom', Host: 'other-bucket.example.com', 'x-extra': '1' });
  assert.equal(typeof hit.url, 'string');
  const next = await api.uploadUrl(orderId, 'h.dcm', { content_type: 'application/dicom' });
  assert.deepEqual(next.headers, { 'Content-Type': 'application/dicom' });
  const noType = await (async () => {
    await api.faults({ endpoint: 'upload', headers: { 'Transfer-Encoding': 'chunked' } });
    return api.uploadUrl(orderId, 'h.dcm');
  })();
  assert.deepEqual(noType.headers, { 'Transfer-Encoding': 'chunked' });
  const [fired] = (await api.events('fault_injected')).filter((e) => e.headers && e.headers['Transfer-Encoding']);
  assert.equal(fired.endpoint, 'upload');
});

test('invalid fault descriptions are refused with 400 and queue nothing', async () => {
  const bad = [
    { endpoint: 'nope', status: 503 },
    { status: 503 },
    { endpoint: 'token', status: 99 },
    { endpoint: 'token' },
    { endpoint: 'token', status: 503, count: 0 },
    { endpoint: 'token', status: 503, probability: 2 },
    { endpoint: 'token', status: 503, colour: 'red' },
    { endpoint: 'token', reset: 'yes' },
    { endpoint: 'token', rate_bytes_per_s: 1000 },
    { endpoint: 'put', rate_bytes_per_s: 0 },
    { endpoint: 'put', headers: { Host: 'x' } },
    { endpoint: 'upload', headers: {} },
    { endpoint: 'upload', headers: ['Host'] },
    { endpoint: 'upload', headers: { 'Bad Name': 'x' } },
    { endpoint: 'upload', headers: { Host: 7 } },
    [{ endpoint: 'token', status: 503 }, { endpoint: 'bad', status: 503 }],
  ];
  for (const spec of bad) {
    const r = await request('POST', `${sim.info.url}/_sim/faults`, { body: spec });
    assert.equal(r.status, 400, JSON.stringify(spec));
    assert.equal(r.json.error, 'invalid_request');
  }
  assert.equal((await request('POST', `${sim.info.url}/_sim/faults`, { body: '{oops' })).status, 400);
  assert.deepEqual((await request('GET', `${sim.info.url}/_sim/faults`)).json.faults, []);
});
