'use strict';

// new-order, upload, the PUT through the store, add-metadata and the /_sim/
// routes, against a running simulator and its real store.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { startSimulator, stopAll, request, Client, sleep } = require('./support/sim');
const { buildDicom, uid } = require('./support/dicom-writer');

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let sim;
let shortSim;
let api;
let dataDir;
let shortDir;
test.before(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-api-test-'));
  shortDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-api-test-'));
  [sim, shortSim] = await Promise.all([
    startSimulator(['--data-dir', dataDir]),
    startSimulator(['--quiet', '--url-ttl', '1', '--data-dir', shortDir]),
  ]);
  api = new Client(sim);
});
test.after(async () => {
  await stopAll();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(shortDir, { recursive: true, force: true });
});

// Object keys the store holds, read from its folder.
function storedKeys(dir) {
  const bucketDir = path.join(dir, 'cloud-ingest');
  if (!fs.existsSync(bucketDir)) return [];
  return fs
    .readdirSync(bucketDir, { recursive: true })
    .filter((f) => f.endsWith('._S3rver_object'))
    .map((f) => f.replace(/\._S3rver_object$/, ''));
}

const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');

test('new-order takes JSON metadata by GET (with a body) or POST and answers a UUID v4', async () => {
  const headers = await api.auth();
  const studyUid = uid();
  const byGet = await request('GET', `${sim.info.url}/new-order`, {
    headers,
    body: { study_instance_uid: studyUid, patient_id: 'P-9', modalities: ['CT'] },
  });
  assert.equal(byGet.status, 200);
  assert.match(byGet.json.order_id, UUID_V4);
  const byPost = await request('POST', `${sim.info.url}/new-order`, { headers, body: { patient_id: 'P-10' } });
  assert.equal(byPost.status, 200);
  assert.match(byPost.json.order_id, UUID_V4);
  assert.notEqual(byPost.json.order_id, byGet.json.order_id);
  const empty = await request('GET', `${sim.info.url}/new-order`, { headers });
  assert.equal(empty.status, 200, 'an empty body is an empty metadata object');

  const snap = await api.studies();
  assert.deepEqual(snap.orders[byGet.json.order_id].metadata, {
    study_instance_uid: studyUid,
    patient_id: 'P-9',
    modalities: ['CT'],
  });
  assert.deepEqual(snap.studies[studyUid].orders, [byGet.json.order_id]);
  assert.equal(snap.studies[studyUid].metadata.patient_id, 'P-9');

  const bad = await request('GET', `${sim.info.url}/new-order`, { headers, body: '{not json' });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, 'invalid_request');
  const notObject = await request('GET', `${sim.info.url}/new-order`, { headers, body: [1, 2] });
  assert.equal(notObject.status, 400);
  const wrongMethod = await request('DELETE', `${sim.info.url}/new-order`, { headers });
  assert.equal(wrongMethod.status, 405);
});

test('upload answers a presigned URL on the simulator with the configured lifetime', async () => {
  const orderId = await api.newOrder({});
  const withType = await api.uploadUrl(orderId, 'a b+c.dcm', { content_type: 'application/dicom', study_uid: '1.2' });
  assert.equal(withType.expires_in, 900);
  assert.deepEqual(withType.headers, { 'Content-Type': 'application/dicom' });
  const u = new URL(withType.url);
  assert.equal(`${u.protocol}//${u.host}`, sim.info.url);
  assert.equal(decodeURIComponent(u.pathname), `/cloud-ingest/${orderId}/a b+c.dcm`);
  assert.equal(u.searchParams.get('X-Amz-Algorithm'), 'AWS4-HMAC-SHA256');
  assert.equal(u.searchParams.get('X-Amz-Expires'), '900');
  assert.equal(u.searchParams.get('X-Amz-SignedHeaders'), 'content-type;host');
  assert.equal(u.searchParams.has('x-amz-checksum-crc32'), false, 'no checksum parameter');

  const plain = await api.uploadUrl(orderId, 'b.dcm');
  assert.equal(plain.headers, undefined, 'no headers when no content type was asked for');
  assert.equal(new URL(plain.url).searchParams.get('X-Amz-SignedHeaders'), 'host');

  const headers = await api.auth();
  const ask = (q) => request('GET', `${sim.info.url}/upload?${new URLSearchParams(q)}`, { headers });
  assert.equal((await ask({ filename: 'a.dcm' })).status, 400);
  assert.equal((await ask({ order_id: crypto.randomUUID(), filename: 'a.dcm' })).status, 404);
  assert.equal((await ask({ order_id: 'not-a-uuid', filename: 'a.dcm' })).status, 404);
  assert.equal((await ask({ order_id: orderId })).status, 400);
  assert.equal((await ask({ order_id: orderId, filename: '../x.dcm' })).status, 400);
  assert.equal((await ask({ order_id: orderId, filename: '..' })).status, 400);
  assert.equal((await ask({ order_id: orderId, filename: 'a.dcm', size: 'big' })).status, 400);
});

test('a PUT to the presigned URL is stored, answered with ETag = MD5 and recorded', async () => {
  const studyUid = uid();
  const sopUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const file = buildDicom({ studyUid, sopUid, pixelBytes: 5000 });
  const r = await api.send(orderId, 'one.dcm', file);
  assert.equal(r.status, 200);
  assert.equal(r.headers.etag, `"${md5(file)}"`);
  assert.ok(storedKeys(dataDir).includes(`${orderId}/one.dcm`));

  const study = (await api.studies()).studies[studyUid];
  assert.equal(study.batches.length, 1);
  assert.deepEqual(
    study.batches[0].instances.map(({ sop_instance_uid, size, md5: m }) => ({ sop_instance_uid, size, md5: m })),
    [{ sop_instance_uid: sopUid, size: file.length, md5: md5(file) }],
  );
  assert.equal(study.uploads, 1);
  const ok = (await api.events('upload_ok')).find((e) => e.key === `${orderId}/one.dcm`);
  assert.equal(ok.md5, md5(file));
  assert.equal(ok.etag, md5(file));
  assert.equal(ok.outcome, 'instance');
});

test('tampered, other-key, changed and unsigned URLs are refused with 403 and store nothing', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const file = buildDicom({ studyUid });
  const { url } = await api.uploadUrl(orderId, 'good.dcm', { content_type: 'application/dicom' });
  const sig = new URL(url).searchParams.get('X-Amz-Signature');
  const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');

  const attempts = {
    tampered: url.replace(`X-Amz-Signature=${sig}`, `X-Amz-Signature=${flipped}`),
    otherKey: url.replace('/good.dcm?', '/other.dcm?'),
    otherOrder: url.replace(orderId, crypto.randomUUID()),
    longerLife: url.replace('X-Amz-Expires=900', 'X-Amz-Expires=3600'),
    unsigned: url.split('?')[0],
  };
  for (const [what, bad] of Object.entries(attempts)) {
    const r = await api.put(bad, file);
    assert.equal(r.status, 403, what);
  }
  const wrongType = await api.put(url, file, 'application/octet-stream');
  assert.equal(wrongType.status, 403, 'Content-Type is signed');
  const wrongMethod = await request('GET', url);
  assert.equal(wrongMethod.status, 405);

  assert.deepEqual(
    storedKeys(dataDir).filter((k) => k.includes('good.dcm') || k.includes('other.dcm')),
    [],
    'the store holds none of them',
  );
  assert.equal((await api.studies()).studies[studyUid].batches.length, 0);
  const refused = (await api.events('upload_refused')).filter((e) => e.key.startsWith(orderId));
  assert.ok(refused.length >= 4);
  assert.ok(refused.every((e) => e.http_status === 403));
  assert.ok(refused.some((e) => e.reason === 'SignatureDoesNotMatch'));

  // the genuine URL still works afterwards
  assert.equal((await api.put(url, file)).status, 200);
  assert.deepEqual(
    storedKeys(dataDir).filter((k) => k.startsWith(orderId)),
    [`${orderId}/good.dcm`],
  );
});

test('an expired URL is refused with 403 by the store and stores nothing (--url-ttl)', async () => {
  const short = new Client(shortSim);
  const orderId = await short.newOrder({});
  const { url, expires_in: ttl } = await short.uploadUrl(orderId, 'late.dcm');
  assert.equal(ttl, 1);
  await sleep(2100);
  const r = await short.put(url, buildDicom());
  assert.equal(r.status, 403);
  assert.match(r.body.toString(), /AccessDenied|expired/);
  assert.deepEqual(storedKeys(shortDir), []);
  assert.deepEqual((await short.studies()).studies, {});
});

test('add-metadata by order_id or study_uid; API metadata overrides DICOM tags', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid, patient_id: 'API-ID' });
  const file = buildDicom({ studyUid, patientName: 'Dicom^Name', patientId: 'DICOM-ID', modality: 'MR' });
  assert.equal((await api.send(orderId, 'm.dcm', file)).status, 200);
  const headers = await api.auth();

  const byOrder = await request('PATCH', `${sim.info.url}/add-metadata?order_id=${orderId}`, {
    headers,
    body: { patient_name: 'Api^Name', priority: 'low' },
  });
  assert.equal(byOrder.status, 200);
  const byStudy = await request('PATCH', `${sim.info.url}/add-metadata?study_uid=${studyUid}`, {
    headers,
    body: { priority: 'high' },
  });
  assert.equal(byStudy.status, 200);

  const study = (await api.studies()).studies[studyUid];
  assert.equal(study.metadata.patient_name, 'Api^Name');
  assert.equal(study.metadata.patient_id, 'API-ID');
  assert.equal(study.metadata.priority, 'high');
  assert.deepEqual(study.metadata.modalities, ['MR']);
  assert.equal(study.metadata.institution_name, 'Test Hospital');
  assert.equal(study.dicom_metadata.patient_name, 'Dicom^Name');
  assert.equal(study.dicom_metadata.patient_id, 'DICOM-ID');

  const patch = (q, body = {}, method = 'PATCH') =>
    request(method, `${sim.info.url}/add-metadata?${new URLSearchParams(q)}`, { headers, body });
  assert.equal((await patch({ order_id: crypto.randomUUID() })).status, 404);
  assert.equal((await patch({ study_uid: '1.2.3.999' })).status, 404);
  assert.equal((await patch({})).status, 400);
  assert.equal((await patch({ order_id: orderId }, [1])).status, 400);
  assert.equal((await patch({ order_id: orderId }, 'nope')).status, 400);
  assert.equal((await patch({ order_id: orderId }, {}, 'GET')).status, 405);
  assert.equal((await api.events('metadata_added')).length, 2);
});

test('non-DICOM and wrong-size uploads are recorded as rejected', async () => {
  const studyUid = uid();
  const withStudy = await api.newOrder({ study_instance_uid: studyUid });
  assert.equal((await api.send(withStudy, 'junk.dcm', Buffer.from('this is not DICOM'))).status, 200);
  const noStudy = await api.newOrder({});
  assert.equal((await api.send(noStudy, 'junk.dcm', Buffer.from('neither is this'))).status, 200);
  // announced size differs from what arrives
  const file = buildDicom({ studyUid });
  const { url } = await api.uploadUrl(withStudy, 'short.dcm', { size: String(file.length + 10) });
  assert.equal((await api.put(url, file)).status, 200);

  const { studies } = await api.studies();
  const reasons = studies[studyUid].rejected.map((r) => r.reason);
  assert.equal(reasons.length, 2);
  assert.match(reasons[0], /not a DICOM Part-10 file/);
  assert.match(reasons[1], /size mismatch/);
  assert.equal(studies[studyUid].batches.length, 0);
  const pseudo = studies._rejected.rejected.find((r) => r.order_id === noStudy);
  assert.match(pseudo.reason, /not a DICOM/);
  assert.equal(pseudo.filename, 'junk.dcm');
});

test('events log orders, URLs without query strings, and uploads; ?since filters', async () => {
  const all = await api.events();
  const types = new Set(all.map((e) => e.type));
  for (const t of ['token_issued', 'order_created', 'url_issued', 'upload_ok', 'upload_refused', 'metadata_added']) {
    assert.ok(types.has(t), t);
  }
  for (const e of all.filter((x) => x.type === 'url_issued')) assert.equal(e.url.includes('?'), false);
  assert.equal(JSON.stringify(all).includes('X-Amz-Signature'), false);
  const last = all[all.length - 1].seq;
  const since = (await request('GET', `${sim.info.url}/_sim/events?since=${last - 2}`)).json.events;
  assert.deepEqual(
    since.map((e) => e.seq),
    [last - 1, last],
  );
  // the request log on stderr carries paths only
  assert.equal(sim.stderr.includes('X-Amz-Signature'), false);
  assert.match(sim.stderr, /PUT \/cloud-ingest\/\S+ 200/);
});

test('health answers, unknown routes 404', async () => {
  const h = await request('GET', `${sim.info.url}/_sim/health`);
  assert.equal(h.status, 200);
  assert.equal(h.json.status, 'ok');
  assert.equal(h.json.url, sim.info.url);
  assert.equal(h.json.s3_url, sim.info.s3_url);
  assert.equal((await request('GET', `${sim.info.url}/nope`)).status, 404);
  assert.equal((await request('GET', `${sim.info.url}/_sim/nope`)).status, 404);
  assert.equal((await request('POST', `${sim.info.url}/_sim/studies`)).status, 405);
});

test('reset forgets studies, events, tokens, faults, stored objects and issued URLs', async () => {
  const orderId = await api.newOrder({});
  const { url } = await api.uploadUrl(orderId, 'before-reset.dcm');
  const oldToken = api.bearer;
  await api.faults({ endpoint: 'new-order', status: 503, count: 5 });
  assert.ok(storedKeys(dataDir).length > 0);

  const r = await api.reset();
  assert.equal(r.status, 200);
  assert.deepEqual(await api.studies(), { studies: {}, orders: {} });
  assert.deepEqual(await api.events(), []);
  assert.deepEqual((await request('GET', `${sim.info.url}/_sim/faults`)).json.faults, []);
  assert.deepEqual(storedKeys(dataDir), []);
  const stale = await request('GET', `${sim.info.url}/new-order`, { headers: { Authorization: `Bearer ${oldToken}` } });
  assert.equal(stale.status, 401, 'tokens are forgotten');
  const oldUrl = await api.put(url, buildDicom());
  assert.equal(oldUrl.status, 403, 'URLs signed before the reset no longer verify');
  assert.deepEqual(storedKeys(dataDir), []);
  // and the service works as new
  const fresh = await api.newOrder({});
  assert.equal((await api.send(fresh, 'after.dcm', buildDicom())).status, 200);
  assert.doesNotMatch(sim.stderr, /Warning/, 'no SDK or deprecation warning');
});
