'use strict';

// --fast-store: presigned PUTs answered by the simulator itself. The same
// refusals as the strict store (signature, key, expiry, Content-Type), the
// body on disk with ETag = MD5, parsing deferred but seen by every /_sim/
// view with the PUT's arrival time, and the PUT faults still applied.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { startSimulator, stopAll, request, Client, sleep } = require('./support/sim');
const { buildDicom, uid } = require('./support/dicom-writer');
const { buildZip } = require('./support/zip-writer');

// The fast simulator (with a data folder to look into), a strict one to compare
// its refusals with, and a fast one whose URLs expire after 1 s.
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-fast-test-'));
let fast;
let api;
let strict;
let shortFast;
test.before(async () => {
  const started = await Promise.all(
    [['--data-dir', dataDir], [], ['--url-ttl', '1']].map((extra, i) =>
      startSimulator(['--quiet', ...(i === 1 ? [] : ['--fast-store']), ...extra]),
    ),
  );
  fast = started[0];
  [api, strict, shortFast] = started.map((proc) => new Client(proc));
});
test.after(async () => {
  await stopAll();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');
const objectFile = (key) => path.join(dataDir, 'fast-store', 'cloud-ingest', key);

test('the announcement and health say which store answers PUTs', async () => {
  assert.equal(fast.info.store, 'fast');
  assert.equal(strict.info.store, 'strict');
  const health = await request('GET', `${api.url}/_sim/health`);
  assert.equal(health.json.store, 'fast');
});

test('a PUT is written to the data folder, answered with ETag = MD5, recorded with its arrival time', async () => {
  const studyUid = uid();
  const sopUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const file = buildDicom({ studyUid, sopUid, pixelBytes: 200000 });
  const before = Date.now();
  const r = await api.send(orderId, 'one.dcm', file);
  const after = Date.now();
  assert.equal(r.status, 200);
  assert.equal(r.headers.etag, `"${md5(file)}"`);
  assert.ok(fs.readFileSync(objectFile(`${orderId}/one.dcm`)).equals(file), 'the file holds the body');
  assert.deepEqual(
    fs.readdirSync(path.dirname(objectFile(`${orderId}/one.dcm`))).filter((f) => f.endsWith('.part')),
    [],
  );

  await sleep(300); // the view is read later than the upload: its time is still the PUT's
  const study = (await api.studies()).studies[studyUid];
  assert.equal(study.batches.length, 1);
  const [inst] = study.batches[0].instances;
  assert.equal(inst.sop_instance_uid, sopUid);
  assert.equal(inst.md5, md5(file));
  assert.equal(inst.order_id, orderId);
  const at = Date.parse(inst.time);
  assert.ok(at >= before - 1 && at <= after + 1, `recorded at ${inst.time}, PUT between ${before} and ${after}`);
  const ok = (await api.events('upload_ok')).find((e) => e.key === `${orderId}/one.dcm`);
  assert.equal(ok.outcome, 'instance');
  assert.equal(ok.etag, md5(file));
  assert.equal(Date.parse(ok.time), at);
});

test('refusals match the strict store: tampered, other key, longer life, wrong Content-Type, unsigned', async () => {
  const outcomes = {};
  for (const [name, client] of [
    ['fast', api],
    ['strict', strict],
  ]) {
    const studyUid = uid();
    const orderId = await client.newOrder({ study_instance_uid: studyUid });
    const { url } = await client.uploadUrl(orderId, 'good.dcm', { content_type: 'application/dicom' });
    const params = new URL(url).searchParams;
    const [sig, cred] = [params.get('X-Amz-Signature'), params.get('X-Amz-Credential')];
    const flipped = `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
    const file = buildDicom({ studyUid });
    const attempts = {
      tampered: [url.replace(`X-Amz-Signature=${sig}`, `X-Amz-Signature=${flipped}`)],
      otherKey: [url.replace('/good.dcm?', '/other.dcm?')],
      otherOrder: [url.replace(orderId, crypto.randomUUID())],
      longerLife: [url.replace('X-Amz-Expires=900', 'X-Amz-Expires=3600')],
      otherAccessKey: [url.replace(encodeURIComponent(cred), encodeURIComponent(cred.replace(/^SIM/, 'SIX')))],
      wrongType: [url, 'application/octet-stream'],
      otherRegion: [url.replace('%2Fus-east-1%2F', '%2Fus-west-2%2F')],
      otherPayloadHash: [url.replace('X-Amz-Content-Sha256=UNSIGNED-PAYLOAD', `X-Amz-Content-Sha256=${'0'.repeat(64)}`)],
      unsigned: [url.split('?')[0]],
    };
    outcomes[name] = {};
    for (const [what, [bad, type]] of Object.entries(attempts)) {
      const r = await client.put(bad, file, type);
      const code = /<Code>([^<]*)<\/Code>/.exec(r.body.toString());
      outcomes[name][what] = `${r.status} ${code ? code[1] : r.json && r.json.error}`;
    }
    outcomes[name].get = String((await request('GET', url)).status);
    assert.equal((await client.studies()).studies[studyUid].batches.length, 0, name);
    assert.equal((await client.put(url, file)).status, 200, `${name}: the genuine URL still works`);
    assert.equal((await client.studies()).studies[studyUid].batches.length, 1, name);
  }
  assert.deepEqual(outcomes.fast, outcomes.strict);
  assert.equal(outcomes.fast.tampered, '403 SignatureDoesNotMatch');
  assert.equal(outcomes.fast.otherAccessKey, '403 InvalidAccessKeyId');
  const refused = await api.events('upload_refused');
  assert.ok(refused.length >= 8 && refused.every((e) => e.http_status === 403));
  assert.deepEqual(
    fs.readdirSync(path.join(dataDir, 'fast-store', 'cloud-ingest'), { recursive: true }).filter((f) => /other\.dcm/.test(f)),
    [],
    'nothing refused was written',
  );
});

test('an expired URL is refused with AccessDenied and stores nothing', async () => {
  const orderId = await shortFast.newOrder({});
  const issued = await shortFast.uploadUrl(orderId, 'late.dcm');
  assert.equal(issued.expires_in, 1);
  // Signed to the second: wait until the second after its expiry has passed.
  const signedAt = new URL(issued.url).searchParams.get('X-Amz-Date');
  const expiry = Date.parse(signedAt.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z')) + 1000;
  await sleep(Math.max(0, expiry - Date.now()) + 1100);
  const answer = await shortFast.put(issued.url, buildDicom());
  const code = /<Code>([^<]*)<\/Code>/.exec(answer.body.toString());
  assert.deepEqual([answer.status, code && code[1]], [403, 'AccessDenied']);
  assert.match(answer.body.toString(), /expired/);
  assert.deepEqual((await shortFast.studies()).studies, {});
});

test('wrong-size, non-DICOM and ZIP uploads are classified as the strict store does', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const dicom = buildDicom({ studyUid });
  const { url } = await api.uploadUrl(orderId, 'short.dcm', { content_type: 'application/dicom', size: String(dicom.length + 1) });
  assert.equal((await api.put(url, dicom)).status, 200);
  assert.equal((await api.send(orderId, 'text.dcm', Buffer.from('not dicom'))).status, 200);
  const zipUid = uid();
  const zip = buildZip([
    { name: 'a.dcm', data: buildDicom({ studyUid: zipUid }) },
    { name: 'b.dcm', data: buildDicom({ studyUid: zipUid }) },
  ]);
  const zipOrder = await api.newOrder({ study_instance_uid: zipUid });
  assert.equal((await api.send(zipOrder, 'study.zip', zip, 'application/zip')).status, 200);

  const studies = (await api.studies()).studies;
  assert.deepEqual(
    studies[studyUid].rejected.map((r) => r.filename),
    ['short.dcm', 'text.dcm'],
  );
  assert.match(studies[studyUid].rejected[0].reason, /size mismatch/);
  assert.equal(studies[zipUid].batches[0].instances.length, 2);
});

test('PUT faults still apply: status, reset, throttle', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const file = buildDicom({ studyUid, pixelBytes: 60000 });
  const { url } = await api.uploadUrl(orderId, 'f.dcm', { content_type: 'application/dicom' });
  await api.faults({ endpoint: 'put', status: 503, retry_after: 3 });
  const refused = await api.put(url, file);
  assert.equal(refused.status, 503);
  assert.equal(refused.headers['retry-after'], '3');
  await api.faults({ endpoint: 'put', reset: true });
  await assert.rejects(api.put(url, file), (err) => ['ECONNRESET', 'EPIPE'].includes(err.code) || /hang up/.test(err.message));
  await api.faults({ endpoint: 'put', rate_bytes_per_s: 40000 });
  const started = Date.now();
  const slow = await api.put(url, file);
  assert.equal(slow.status, 200);
  assert.ok(Date.now() - started >= 1000, 'about 60 KB at 40 KB/s');
  assert.equal(slow.headers.etag, `"${md5(file)}"`);
  const study = (await api.studies()).studies[studyUid];
  assert.equal(study.batches[0].instances.length, 1);
  assert.equal(study.batches[0].instances[0].md5, md5(file));
});

for (const throttled of [false, true]) {
  test(`a client that goes away mid-body leaves no object and records the failure${throttled ? ' (throttled)' : ''}`, async () => {
    const orderId = await api.newOrder({});
    const name = throttled ? 'cut-slow.dcm' : 'cut.dcm';
    const { url } = await api.uploadUrl(orderId, name, { content_type: 'application/dicom' });
    if (throttled) await api.faults({ endpoint: 'put', rate_bytes_per_s: 20000 });
    const u = new URL(url);
    await new Promise((resolve) => {
      const req = require('http').request({
        host: u.hostname,
        port: u.port,
        method: 'PUT',
        path: u.pathname + u.search,
        headers: { 'Content-Type': 'application/dicom', 'Content-Length': 100000 },
        agent: false,
      });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(30000));
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 200);
    });
    const deadline = Date.now() + 5000;
    let failed;
    while (!failed && Date.now() < deadline) {
      failed = (await api.events('upload_failed')).find((e) => e.key === `${orderId}/${name}`);
      if (!failed) await sleep(50);
    }
    assert.ok(failed, 'upload_failed recorded');
    const folder = path.dirname(objectFile(`${orderId}/${name}`));
    assert.deepEqual(fs.existsSync(folder) ? fs.readdirSync(folder) : [], []);
  });
}

test('reset forgets what was received but not yet looked at, and the old URLs', async () => {
  const studyUid = uid();
  const orderId = await shortFast.newOrder({ study_instance_uid: studyUid });
  const { url } = await shortFast.uploadUrl(orderId, 'x.dcm', { content_type: 'application/dicom' });
  assert.equal((await shortFast.put(url, buildDicom({ studyUid }))).status, 200);
  assert.equal((await request('POST', `${shortFast.url}/_sim/reset`)).status, 200);
  assert.deepEqual((await shortFast.studies()).studies, {});
  assert.equal((await shortFast.events('upload_ok')).length, 0);
});

test('URLs signed by the presigner alone are the URLs getSignedUrl gives (--fast-store issues those)', async () => {
  const { Store } = require('../src/store');
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-presign-test-'));
  const store = new Store({ directory, bucket: 'cloud-ingest' });
  await store.start();
  try {
    const signingDate = new Date('2026-01-02T03:04:05Z');
    const keys = ['order/plain.dcm', 'order/a b+c=(d)!*~.dcm', 'order/ünï©ødé ✓.zip', "order/it's;%20&x.dcm"];
    for (const key of keys) {
      for (const contentType of ['application/dicom', '']) {
        const options = { contentType, ttlSeconds: 900, signingDate };
        store.directPresign = false;
        const viaClient = await store.presignPut('http://127.0.0.1:4567', key, options);
        store.directPresign = true;
        const direct = await store.presignPut('http://127.0.0.1:4567', key, options);
        assert.deepEqual(direct, viaClient, `${key} (${contentType || 'no Content-Type'})`);
      }
    }
  } finally {
    await store.stop();
    fs.rmSync(directory, { recursive: true, force: true });
  }
});
