'use strict';

// Unit tests of the service rules with a fake clock.

const test = require('node:test');
const assert = require('node:assert/strict');

const { Registry, NotFoundError } = require('../src/rules');

function setup() {
  const clock = { t: 1_000_000 };
  const reg = new Registry({ groupWindow: 60, overwriteWindow: 300, now: () => clock.t });
  const inst = (sop, extra = {}) => ({
    sop_instance_uid: sop,
    series_instance_uid: 'S1',
    size: 10,
    md5: `md5-${sop}`,
    filename: `${sop}.dcm`,
    tags: { study_instance_uid: 'ST', patient_name: 'Dicom^Name', patient_id: 'P', modality: 'MR', series_instance_uid: 'S1', ...extra },
  });
  const upload = (orderId, ...sops) =>
    reg.recordInstances({ studyUid: 'ST', orderId, source: 'instance', instances: sops.map((s) => inst(s)) });
  return { clock, reg, upload, inst };
}

test('uploads within the grouping window form one batch; a batch closes after it', () => {
  const { clock, reg, upload } = setup();
  const order = reg.createOrder({});
  upload(order, 'a');
  clock.t += 59_000;
  upload(order, 'b');
  clock.t += 60_000; // exactly the window after the last upload: still open
  upload(order, 'c');
  let s = reg.snapshot().studies.ST;
  assert.equal(s.batches.length, 1);
  assert.deepEqual(s.batches[0].instances.map((i) => i.sop_instance_uid), ['a', 'b', 'c']);
  assert.equal(s.batches[0].closed, false);
  clock.t += 60_001;
  s = reg.snapshot().studies.ST;
  assert.equal(s.batches[0].closed, true);
  assert.equal(s.uploads, 3);
});

test('a new batch within the overwrite window overwrites; later it is a duplicate', () => {
  const { clock, reg, upload } = setup();
  upload(null, 'a');
  clock.t += 61_000;
  upload(null, 'a'); // batch 1 overwrites batch 0
  clock.t += 300_001; // past the overwrite window, measured from batch 1's last upload
  upload(null, 'a'); // batch 2 duplicates batch 1
  const [b0, b1, b2] = reg.snapshot().studies.ST.batches;
  assert.equal(b0.overwritten, true);
  assert.equal(b0.overwritten_by, 1);
  assert.equal(b1.overwrites, 0);
  assert.equal(b1.overwritten, false);
  assert.equal(b1.duplicate, false);
  assert.equal(b2.duplicate, true);
  assert.equal(b2.duplicate_of, 1);
  assert.equal(b2.overwrites, null);
});

test('the overwrite window is measured from the previous batch last upload', () => {
  const { clock, reg, upload } = setup();
  upload(null, 'a');
  clock.t += 50_000;
  upload(null, 'b'); // same batch, last upload moves
  clock.t += 299_000; // 349 s after the first upload, 299 s after the last
  upload(null, 'c');
  const [b0, b1] = reg.snapshot().studies.ST.batches;
  assert.equal(b0.overwritten, true);
  assert.equal(b1.duplicate, false);
});

test('a retried instance appears once in its batch, last upload wins, all uploads count', () => {
  const { clock, reg, inst } = setup();
  reg.recordInstances({ studyUid: 'ST', orderId: null, source: 'instance', instances: [inst('a')] });
  clock.t += 1000;
  reg.recordInstances({ studyUid: 'ST', orderId: null, source: 'instance', instances: [{ ...inst('a'), md5: 'second' }] });
  const s = reg.snapshot().studies.ST;
  assert.equal(s.batches[0].instances.length, 1);
  assert.equal(s.batches[0].instances[0].md5, 'second');
  assert.equal(s.batches[0].instances[0].uploads, 2);
  assert.equal(s.batches[0].uploads, 2);
  assert.equal(s.uploads, 2);
});

test('API metadata overrides DICOM tags, later updates override earlier ones', () => {
  const { clock, reg, upload } = setup();
  const order = reg.createOrder({ study_instance_uid: 'ST', patient_name: 'Order^Name', site: 'one' });
  upload(order, 'a');
  clock.t += 1000;
  reg.addMetadata({ orderId: order }, { site: 'two' });
  reg.addMetadata({ studyUid: 'ST' }, { priority: 'high', site: 'three' });
  const s = reg.snapshot().studies.ST;
  assert.equal(s.metadata.patient_name, 'Order^Name');
  assert.equal(s.dicom_metadata.patient_name, 'Dicom^Name');
  assert.equal(s.metadata.patient_id, 'P'); // from DICOM, not contradicted
  assert.deepEqual(s.metadata.modalities, ['MR']);
  assert.equal(s.metadata.number_of_instances, '1');
  assert.equal(s.metadata.site, 'three');
  assert.equal(s.metadata.priority, 'high');
  assert.deepEqual(s.orders, [order]);
  assert.throws(() => reg.addMetadata({ orderId: 'nope' }, {}), NotFoundError);
  assert.throws(() => reg.addMetadata({ studyUid: 'unknown' }, {}), NotFoundError);
});

test('rejects and NIfTI bundles without a study go to pseudo-studies', () => {
  const { reg } = setup();
  assert.equal(reg.recordRejected(undefined, { reason: 'bad', order_id: null }), '_rejected');
  assert.equal(reg.recordNifti(undefined, { order_id: null, bvals: [0] }), '_unattributed');
  const snap = reg.snapshot().studies;
  assert.equal(snap._rejected.rejected[0].reason, 'bad');
  assert.equal(snap._rejected.study_instance_uid, null);
  assert.deepEqual(snap._unattributed.nifti[0].bvals, [0]);
});
