'use strict';

// The service's rules end to end: grouping and overwrite windows, retries
// within a batch, and what ZIP uploads may hold.

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const zlib = require('zlib');

const { startSimulator, stopAll, Client, sleep } = require('./support/sim');
const { buildDicom, uid } = require('./support/dicom-writer');
const { buildZip, buildNifti } = require('./support/zip-writer');

const GROUP = 2;
const OVERWRITE = 5;

let sim;
let api;
test.before(async () => {
  sim = await startSimulator(['--quiet', '--group-window', String(GROUP), '--overwrite-window', String(OVERWRITE)]);
  api = new Client(sim);
});
test.after(stopAll);

const md5 = (b) => crypto.createHash('md5').update(b).digest('hex');
const sops = (batch) => batch.instances.map((i) => i.sop_instance_uid);

async function study(studyUid) {
  return (await api.studies()).studies[studyUid];
}

test('grouping window, closing, overwrite within the window and duplicate after it', async () => {
  const studyUid = uid();
  const otherStudy = uid();
  const series = uid();
  const files = [1, 2, 3].map((n) => buildDicom({ studyUid, seriesUid: series, sopUid: `${studyUid}.${n}` }));
  const order1 = await api.newOrder({ study_instance_uid: studyUid });

  assert.equal((await api.send(order1, '1.dcm', files[0])).status, 200);
  assert.equal((await api.send(order1, '2.dcm', files[1])).status, 200);
  // another study in between does not disturb this one
  assert.equal((await api.send(await api.newOrder({}), 'x.dcm', buildDicom({ studyUid: otherStudy }))).status, 200);
  await sleep(300);
  assert.equal((await api.send(order1, '3.dcm', files[2])).status, 200);
  // a retry of instance 2 inside the batch
  assert.equal((await api.send(order1, '2.dcm', files[1])).status, 200);

  let s = await study(studyUid);
  assert.equal(s.batches.length, 1);
  assert.deepEqual(sops(s.batches[0]), [`${studyUid}.1`, `${studyUid}.3`, `${studyUid}.2`]);
  assert.equal(s.batches[0].closed, false);
  assert.equal(s.batches[0].uploads, 4);
  assert.equal(s.uploads, 4);
  assert.equal(s.batches[0].instances.find((i) => i.sop_instance_uid === `${studyUid}.2`).uploads, 2);
  assert.ok(s.batches[0].first_upload < s.batches[0].last_upload);
  assert.equal((await study(otherStudy)).batches.length, 1);

  await sleep(GROUP * 1000 + 500);
  s = await study(studyUid);
  assert.equal(s.batches[0].closed, true, 'closed once the grouping window passed');

  // the study again, within the overwrite window: replaces the first batch
  const order2 = await api.newOrder({ study_instance_uid: studyUid });
  assert.equal((await api.send(order2, '1.dcm', files[0])).status, 200);
  assert.equal((await api.send(order2, '2.dcm', files[1])).status, 200);
  s = await study(studyUid);
  assert.equal(s.batches.length, 2);
  assert.equal(s.batches[0].overwritten, true);
  assert.equal(s.batches[0].overwritten_by, 1);
  assert.equal(s.batches[1].overwrites, 0);
  assert.equal(s.batches[1].duplicate, false);
  assert.equal(s.batches[1].closed, false);
  assert.deepEqual(sops(s.batches[1]), [`${studyUid}.1`, `${studyUid}.2`]);
  assert.deepEqual(s.orders, [order1, order2]);
  assert.equal(s.metadata.number_of_instances, '2', 'DICOM metadata comes from the latest batch');

  // after the overwrite window (from the last upload): kept as a duplicate
  await sleep(OVERWRITE * 1000 + 500);
  const order3 = await api.newOrder({});
  assert.equal((await api.send(order3, '1.dcm', files[0])).status, 200);
  s = await study(studyUid);
  assert.equal(s.batches.length, 3);
  assert.equal(s.batches[1].overwritten, false);
  assert.equal(s.batches[2].duplicate, true);
  assert.equal(s.batches[2].duplicate_of, 1);
  assert.equal(s.batches[2].overwrites, null);
  assert.deepEqual(s.orders, [order1, order2, order3], 'the order is linked by the DICOM content');
  assert.equal(s.uploads, 7);
});

test('parallel uploads of one study land in one batch', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const files = Array.from({ length: 16 }, (_, n) => buildDicom({ studyUid, sopUid: `${studyUid}.${n}` }));
  const answers = await Promise.all(files.map((f, n) => api.send(orderId, `${n}.dcm`, f)));
  assert.ok(answers.every((r) => r.status === 200));
  const s = await study(studyUid);
  assert.equal(s.batches.length, 1);
  assert.equal(s.batches[0].instances.length, 16);
  assert.equal(s.metadata.number_of_instances, '16');
});

test('a DICOM study ZIP is opened and its instances recorded as one batch', async () => {
  const studyUid = uid();
  const [s1, s2] = [uid(), uid()];
  const entries = [
    { name: 'study/', data: Buffer.alloc(0) },
    { name: 'study/IMG1.dcm', data: buildDicom({ studyUid, seriesUid: s1, sopUid: `${studyUid}.1` }) },
    { name: 'study/IMG2.dcm', data: buildDicom({ studyUid, seriesUid: s1, sopUid: `${studyUid}.2`, implicit: true }) },
    { name: 'study/IMG3', data: buildDicom({ studyUid, seriesUid: s2, sopUid: `${studyUid}.3`, modality: 'SR' }) },
    { name: 'DICOMDIR', data: Buffer.from('index, ignored') },
  ];
  const zip = buildZip(entries);
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const r = await api.send(orderId, 'study.zip', zip, 'application/zip');
  assert.equal(r.status, 200);
  assert.equal(r.headers.etag, `"${md5(zip)}"`);

  const s = await study(studyUid);
  assert.equal(s.batches.length, 1);
  assert.deepEqual(s.batches[0].sources, ['zip']);
  assert.equal(s.batches[0].uploads, 1);
  assert.deepEqual(
    s.batches[0].instances.map((i) => [i.sop_instance_uid, i.size, i.md5, i.filename]),
    entries.slice(1, 4).map((e, n) => [`${studyUid}.${n + 1}`, e.data.length, md5(e.data), `study.zip:${e.name}`]),
  );
  assert.deepEqual(s.metadata.modalities, ['CT', 'SR']);
  assert.equal(s.metadata.number_of_series, '2');
  assert.deepEqual(s.rejected, []);
});

test('a .zip file name is enough to be treated as a ZIP', async () => {
  const studyUid = uid();
  const zip = buildZip([{ name: 'a.dcm', data: buildDicom({ studyUid }) }], { deflate: false });
  const orderId = await api.newOrder({});
  const { url } = await api.uploadUrl(orderId, 'upload.ZIP');
  assert.equal((await api.put(url, zip, 'application/octet-stream')).status, 200);
  assert.equal((await study(studyUid)).batches[0].instances.length, 1);
});

test('a NIfTI bundle is accepted with its b-values', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const zip = buildZip([
    { name: 'dwi/dwi.nii.gz', data: zlib.gzipSync(buildNifti()) },
    { name: 'dwi/dwi.bvec', data: '0 1 0\n0 0 1\n0 0 0\n' },
    { name: 'dwi/dwi.bval', data: '0 1000 1000\n' },
    { name: 'dwi/dwi.json', data: '{"Modality":"MR"}' },
  ]);
  assert.equal((await api.send(orderId, 'dwi.zip', zip, 'application/zip')).status, 200);
  const s = await study(studyUid);
  assert.equal(s.nifti.length, 1);
  assert.deepEqual(s.nifti[0].files, {
    image: 'dwi/dwi.nii.gz',
    bvec: 'dwi/dwi.bvec',
    bval: 'dwi/dwi.bval',
    sidecars: ['dwi/dwi.json'],
  });
  assert.deepEqual(s.nifti[0].bvals, [0, 1000, 1000]);
  assert.equal(s.nifti[0].md5, md5(zip));
  assert.deepEqual(s.rejected, []);

  // an uncompressed .nii of an order without a study goes under "_unattributed"
  const loose = await api.newOrder({});
  const plain = buildZip([
    { name: 'b.nii', data: buildNifti() },
    { name: 'b.bvec', data: '1\n0\n0' },
    { name: 'b.bval', data: '700' },
  ]);
  assert.equal((await api.send(loose, 'b.zip', plain, 'application/zip')).status, 200);
  const pseudo = (await api.studies()).studies._unattributed;
  assert.deepEqual(pseudo.nifti.find((n) => n.order_id === loose).bvals, [700]);

  // the upload's study_uid parameter names the study when the order does not
  const named = uid();
  const { url } = await api.uploadUrl(loose, 'c.zip', { content_type: 'application/zip', study_uid: named });
  assert.equal((await api.put(url, plain, 'application/zip')).status, 200);
  assert.deepEqual((await study(named)).nifti[0].bvals, [700]);
});

test('ZIPs that hold neither one DICOM study nor a NIfTI bundle are rejected with a reason', async () => {
  const studyUid = uid();
  const orderId = await api.newOrder({ study_instance_uid: studyUid });
  const nifti = zlib.gzipSync(buildNifti());
  const goodZip = buildZip([{ name: 'x.dcm', data: buildDicom({ studyUid }) }]);
  const cases = [
    ['malformed.zip', crypto.randomBytes(300), /malformed ZIP/],
    ['truncated.zip', goodZip.subarray(0, goodZip.length - 30), /malformed ZIP/],
    ['empty.zip', buildZip([]), /no files/],
    ['two-studies.zip', buildZip([{ name: 'a', data: buildDicom() }, { name: 'b', data: buildDicom() }]), /more than one study/],
    [
      'mixed.zip',
      buildZip([{ name: 'a.dcm', data: buildDicom({ studyUid }) }, { name: 'readme.txt', data: 'hi' }]),
      /mixes DICOM files with other files \(readme\.txt\)/,
    ],
    ['text.zip', buildZip([{ name: 'notes.txt', data: 'hello' }]), /neither a DICOM study nor a NIfTI bundle/],
    ['no-bval.zip', buildZip([{ name: 'a.nii.gz', data: nifti }, { name: 'a.bvec', data: '0\n0\n0' }]), /lacks a \.bval/],
    [
      'mismatch.zip',
      buildZip([
        { name: 'a.nii.gz', data: nifti },
        { name: 'a.bvec', data: '0 1\n0 0\n0 0' },
        { name: 'a.bval', data: '0 1000 2000' },
      ]),
      /3 rows of 3 values/,
    ],
    [
      'not-nifti.zip',
      buildZip([{ name: 'a.nii', data: Buffer.alloc(400) }, { name: 'a.bvec', data: '0\n0\n0' }, { name: 'a.bval', data: '0' }]),
      /no NIfTI header/,
    ],
  ];
  for (const [name, data] of cases) {
    assert.equal((await api.send(orderId, name, data, 'application/zip')).status, 200, name);
  }
  const s = await study(studyUid);
  assert.equal(s.batches.length, 0, 'no instance of a rejected ZIP is recorded');
  assert.equal(s.rejected.length, cases.length);
  for (const [name, data, reason] of cases) {
    const entry = s.rejected.find((r) => r.filename === name);
    assert.ok(entry, name);
    assert.match(entry.reason, reason, name);
    assert.equal(entry.md5, md5(data));
  }

  // unattributable: an order without study, a ZIP naming no single study
  const loose = await api.newOrder({});
  assert.equal((await api.send(loose, 'bad.zip', Buffer.from('PK nope'), 'application/zip')).status, 200);
  const pseudo = (await api.studies()).studies._rejected;
  assert.match(pseudo.rejected.find((r) => r.order_id === loose).reason, /malformed ZIP/);
});
