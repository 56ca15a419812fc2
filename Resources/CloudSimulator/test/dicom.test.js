'use strict';

// Unit tests of the DICOM tag reader against files made by the test writer.

const test = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('zlib');

const { parseDicom, looksLikeDicom, DicomError } = require('../src/dicom');
const { buildDicom } = require('./support/dicom-writer');

test('reads study, series and instance UIDs and study tags (explicit VR LE)', () => {
  const file = buildDicom({ studyUid: '1.2.3', seriesUid: '1.2.3.4', sopUid: '1.2.3.4.5', patientName: 'Müller^Anna' });
  const tags = parseDicom(file);
  assert.equal(tags.study_instance_uid, '1.2.3');
  assert.equal(tags.series_instance_uid, '1.2.3.4');
  assert.equal(tags.sop_instance_uid, '1.2.3.4.5');
  assert.equal(tags.patient_name, 'Müller^Anna'); // ISO_IR 192 decoded as UTF-8
  assert.equal(tags.patient_id, 'PID-1');
  assert.equal(tags.modality, 'CT');
  assert.equal(tags.transfer_syntax_uid, '1.2.840.10008.1.2.1');
});

test('reads implicit VR little endian datasets', () => {
  const tags = parseDicom(buildDicom({ implicit: true, studyUid: '1.2.9', sopUid: '1.2.9.1' }));
  assert.equal(tags.study_instance_uid, '1.2.9');
  assert.equal(tags.sop_instance_uid, '1.2.9.1');
  assert.equal(tags.transfer_syntax_uid, '1.2.840.10008.1.2');
});

test('skips undefined-length sequences without taking nested tags', () => {
  for (const implicit of [false, true]) {
    const tags = parseDicom(buildDicom({ implicit, withSequence: true, studyUid: '1.2.10' }));
    assert.equal(tags.study_instance_uid, '1.2.10', `implicit=${implicit}`);
  }
  // without a top-level StudyInstanceUID, the decoy inside the sequence must not be used
  assert.throws(() => parseDicom(buildDicom({ withSequence: true, omitStudyUid: true })), /no StudyInstanceUID/);
});

test('reads deflated explicit VR little endian datasets', () => {
  const plain = buildDicom({ studyUid: '1.2.11', sopUid: '1.2.11.1' });
  // re-wrap: same meta with the deflated transfer syntax, dataset deflated
  const metaLen = plain.readUInt32LE(132 + 8);
  const metaEnd = 132 + 12 + metaLen;
  const meta = Buffer.from(plain.subarray(0, metaEnd));
  const ts = '1.2.840.10008.1.2.1';
  const at = meta.indexOf(Buffer.from(`${ts}\0`, 'latin1'));
  assert.ok(at > 0);
  // same length: '1.2.840.10008.1.2.1' + pad(1) = 20 bytes; deflated UID is 22 bytes, so rebuild the element
  const before = meta.subarray(0, at - 8);
  const after = meta.subarray(at + 20);
  const uid = Buffer.from('1.2.840.10008.1.2.1.99', 'latin1');
  const head = Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49, uid.length, 0x00]);
  const newMeta = Buffer.concat([before, head, uid, after]);
  newMeta.writeUInt32LE(metaLen + 2, 132 + 8);
  const file = Buffer.concat([newMeta, zlib.deflateRawSync(plain.subarray(metaEnd))]);
  const tags = parseDicom(file);
  assert.equal(tags.study_instance_uid, '1.2.11');
  assert.equal(tags.sop_instance_uid, '1.2.11.1');
});

test('refuses what is not a readable Part-10 file', () => {
  assert.equal(looksLikeDicom(Buffer.from('hello')), false);
  assert.throws(() => parseDicom(Buffer.from('not dicom at all')), DicomError);
  assert.throws(() => parseDicom(Buffer.alloc(200)), /no DICM prefix/);
  const file = buildDicom();
  assert.throws(() => parseDicom(file.subarray(0, 300)), DicomError); // truncated
});
