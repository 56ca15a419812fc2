'use strict';

// A tiny DICOM Part-10 writer for tests: preamble, "DICM", group 2 meta
// (explicit VR little endian), then the dataset in explicit or implicit VR
// little endian. Elements must be given in ascending tag order.

const crypto = require('crypto');

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const CT_IMAGE_STORAGE = '1.2.840.10008.5.1.4.1.1.2';
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

function pad(buf, vr) {
  if (buf.length % 2 === 0) return buf;
  const filler = vr === 'UI' || vr === 'OB' || vr === 'UN' ? 0x00 : 0x20;
  return Buffer.concat([buf, Buffer.from([filler])]);
}

function valueBytes(vr, value) {
  if (Buffer.isBuffer(value)) return pad(value, vr);
  if (vr === 'US') {
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value);
    return b;
  }
  if (vr === 'UL') {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    return b;
  }
  return pad(Buffer.from(String(value), 'utf8'), vr); // the writer declares ISO_IR 192
}

function tagBytes(tag) {
  const b = Buffer.alloc(4);
  b.writeUInt16LE(tag >>> 16, 0);
  b.writeUInt16LE(tag & 0xffff, 2);
  return b;
}

function u32(n) {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/**
 * Encodes one element. `value` may be a string/number/Buffer, or for SQ an
 * array of items (each an array of [tag, vr, value]) written with undefined
 * lengths, so that readers must walk them.
 */
function element(tag, vr, value, explicit) {
  if (vr === 'SQ') {
    const items = value.map((item) =>
      Buffer.concat([tagBytes(0xfffee000), u32(0xffffffff), encode(item, explicit), tagBytes(0xfffee00d), u32(0)]),
    );
    const body = Buffer.concat([...items, tagBytes(0xfffee0dd), u32(0)]);
    const head = explicit
      ? Buffer.concat([tagBytes(tag), Buffer.from('SQ'), Buffer.alloc(2), u32(0xffffffff)])
      : Buffer.concat([tagBytes(tag), u32(0xffffffff)]);
    return Buffer.concat([head, body]);
  }
  const data = valueBytes(vr, value);
  let head;
  if (!explicit) head = Buffer.concat([tagBytes(tag), u32(data.length)]);
  else if (LONG_VRS.has(vr)) head = Buffer.concat([tagBytes(tag), Buffer.from(vr), Buffer.alloc(2), u32(data.length)]);
  else {
    const len = Buffer.alloc(2);
    len.writeUInt16LE(data.length);
    head = Buffer.concat([tagBytes(tag), Buffer.from(vr), len]);
  }
  return Buffer.concat([head, data]);
}

function encode(elements, explicit) {
  return Buffer.concat(elements.map(([tag, vr, value]) => element(tag, vr, value, explicit)));
}

function uid(prefix = '1.2.826.0.1.3680043.8.498') {
  return `${prefix}.${BigInt(`0x${crypto.randomBytes(8).toString('hex')}`)}`;
}

/**
 * Builds a Part-10 file. Options: studyUid, seriesUid, sopUid (generated when
 * absent), patientName, patientId, modality, studyDescription, implicit
 * (implicit VR LE dataset), withSequence (adds an undefined-length sequence
 * holding a decoy StudyInstanceUID), pixelBytes (size of fake pixel data),
 * omitStudyUid.
 */
function buildDicom(opts = {}) {
  const sopUid = opts.sopUid || uid();
  const transferSyntax = opts.implicit ? IMPLICIT_LE : EXPLICIT_LE;
  const metaElements = encode(
    [
      [0x00020001, 'OB', Buffer.from([0, 1])],
      [0x00020002, 'UI', CT_IMAGE_STORAGE],
      [0x00020003, 'UI', sopUid],
      [0x00020010, 'UI', transferSyntax],
      [0x00020012, 'UI', '1.2.826.0.1.3680043.8.498.1'],
    ],
    true,
  );
  const meta = Buffer.concat([element(0x00020000, 'UL', metaElements.length, true), metaElements]);

  const elements = [
    [0x00080005, 'CS', 'ISO_IR 192'],
    [0x00080016, 'UI', CT_IMAGE_STORAGE],
    [0x00080018, 'UI', sopUid],
    [0x00080020, 'DA', opts.studyDate || '20250101'],
    [0x00080030, 'TM', '120000'],
    [0x00080050, 'SH', opts.accessionNumber || 'ACC1'],
    [0x00080060, 'CS', opts.modality || 'CT'],
    [0x00080080, 'LO', opts.institutionName || 'Test Hospital'],
    [0x00080090, 'PN', 'Ref^Doctor'],
  ];
  if (opts.withSequence) {
    elements.push([0x00081110, 'SQ', [[[0x00081150, 'UI', CT_IMAGE_STORAGE], [0x0020000d, 'UI', '9.9.9.9']]]]);
  }
  elements.push(
    [0x00081030, 'LO', opts.studyDescription || 'Test study'],
    [0x00100010, 'PN', opts.patientName || 'Doe^Jane'],
    [0x00100020, 'LO', opts.patientId || 'PID-1'],
    [0x00100030, 'DA', '19700101'],
    [0x00100040, 'CS', 'F'],
  );
  if (!opts.omitStudyUid) elements.push([0x0020000d, 'UI', opts.studyUid || uid()]);
  elements.push([0x0020000e, 'UI', opts.seriesUid || uid()]);
  elements.push([0x7fe00010, 'OW', crypto.randomBytes(opts.pixelBytes || 64)]);

  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), meta, encode(elements, !opts.implicit)]);
}

module.exports = { buildDicom, uid };
