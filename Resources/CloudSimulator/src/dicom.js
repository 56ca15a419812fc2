'use strict';

// A small DICOM Part-10 tag reader: just enough to learn which study, series
// and instance an uploaded file belongs to, plus the patient/study tags that
// the service merges with API metadata. It reads top-level elements only and
// stops at Pixel Data.

const zlib = require('zlib');

const TS_IMPLICIT_LE = '1.2.840.10008.1.2';
const TS_EXPLICIT_BE = '1.2.840.10008.1.2.2';
const TS_DEFLATED_LE = '1.2.840.10008.1.2.1.99';

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED_LENGTH = 0xffffffff;
const ITEM = 0xfffee000;
const ITEM_DELIMITATION = 0xfffee00d;
const SEQUENCE_DELIMITATION = 0xfffee0dd;
const PIXEL_DATA = 0x7fe00010;
const SPECIFIC_CHARACTER_SET = 0x00080005;

// tag -> key in the result (snake_case, like the order metadata keys)
const WANTED = new Map([
  [0x00020010, 'transfer_syntax_uid'],
  [0x00020003, 'media_storage_sop_instance_uid'],
  [0x00080016, 'sop_class_uid'],
  [0x00080018, 'sop_instance_uid'],
  [0x00080020, 'study_date'],
  [0x00080030, 'study_time'],
  [0x00080050, 'accession_number'],
  [0x00080060, 'modality'],
  [0x00080080, 'institution_name'],
  [0x00080090, 'referring_physician_name'],
  [0x00081030, 'study_description'],
  [0x00100010, 'patient_name'],
  [0x00100020, 'patient_id'],
  [0x00100030, 'patient_birth_date'],
  [0x00100040, 'patient_sex'],
  [0x0020000d, 'study_instance_uid'],
  [0x0020000e, 'series_instance_uid'],
]);

class DicomError extends Error {}

class Reader {
  constructor(buffer, offset, littleEndian, explicitVr) {
    this.buf = buffer;
    this.pos = offset;
    this.le = littleEndian;
    this.explicit = explicitVr;
  }

  need(n) {
    if (this.pos + n > this.buf.length) throw new DicomError('truncated DICOM data');
  }

  u16() {
    this.need(2);
    const v = this.le ? this.buf.readUInt16LE(this.pos) : this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32() {
    this.need(4);
    const v = this.le ? this.buf.readUInt32LE(this.pos) : this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  tag() {
    const group = this.u16();
    const element = this.u16();
    return ((group << 16) | element) >>> 0;
  }

  // Reads one element header; item/delimiter tags never carry a VR.
  header() {
    const tag = this.tag();
    if (tag >>> 16 === 0xfffe) return { tag, vr: null, length: this.u32() };
    if (!this.explicit) return { tag, vr: null, length: this.u32() };
    this.need(2);
    const vr = this.buf.toString('latin1', this.pos, this.pos + 2);
    this.pos += 2;
    if (!/^[A-Z]{2}$/.test(vr)) throw new DicomError(`invalid VR at offset ${this.pos - 2}`);
    if (LONG_VRS.has(vr)) {
      this.pos += 2; // reserved
      return { tag, vr, length: this.u32() };
    }
    return { tag, vr, length: this.u16() };
  }

  skip(length) {
    this.need(length);
    this.pos += length;
  }

  // Skips a sequence of undefined length (its items may nest further).
  skipUndefinedSequence(depth) {
    if (depth > 32) throw new DicomError('sequences nested too deeply');
    for (;;) {
      const { tag, length } = this.header();
      if (tag === SEQUENCE_DELIMITATION) return;
      if (tag !== ITEM) throw new DicomError('malformed sequence');
      if (length === UNDEFINED_LENGTH) this.skipUndefinedItem(depth + 1);
      else this.skip(length);
    }
  }

  skipUndefinedItem(depth) {
    for (;;) {
      const { tag, length } = this.header();
      if (tag === ITEM_DELIMITATION) return;
      if (length === UNDEFINED_LENGTH) this.skipUndefinedSequence(depth + 1);
      else this.skip(length);
    }
  }
}

function cleanString(raw) {
  return raw.replace(/[\0 ]+$/g, '').replace(/^ +/, '');
}

// Reads consecutive top-level elements into `out` until `stop(tag)` or the end.
function readElements(reader, out, stop) {
  let charset = 'latin1';
  while (reader.pos < reader.buf.length) {
    const start = reader.pos;
    const peekTag = new Reader(reader.buf, start, reader.le, reader.explicit).tag();
    if (stop(peekTag)) {
      reader.pos = start;
      return;
    }
    const { tag, vr, length } = reader.header();
    if (tag === PIXEL_DATA) return;
    if (length === UNDEFINED_LENGTH) {
      // An undefined-length UN holds implicit VR little endian items.
      const inner = vr === 'UN' ? new Reader(reader.buf, reader.pos, true, false) : reader;
      inner.skipUndefinedSequence(0);
      reader.pos = inner.pos;
      continue;
    }
    reader.need(length);
    if (tag === SPECIFIC_CHARACTER_SET) {
      const value = reader.buf.toString('latin1', reader.pos, reader.pos + length);
      if (/ISO_IR 192/.test(value)) charset = 'utf8';
    }
    const key = WANTED.get(tag);
    if (key) {
      const text = reader.buf.toString(charset, reader.pos, reader.pos + length);
      const value = cleanString(text);
      if (value !== '') out[key] = value;
    }
    reader.pos += length;
  }
}

/**
 * Parses a DICOM Part-10 file. Returns the wanted tags as snake_case keys;
 * throws DicomError when the bytes are not a readable Part-10 file or lack a
 * StudyInstanceUID / SOPInstanceUID.
 */
function parseDicom(buffer) {
  if (buffer.length < 132 || buffer.toString('latin1', 128, 132) !== 'DICM') {
    throw new DicomError('not a DICOM Part-10 file (no DICM prefix)');
  }
  const tags = {};
  const meta = new Reader(buffer, 132, true, true);
  readElements(meta, tags, (tag) => tag >>> 16 !== 0x0002);
  const ts = tags.transfer_syntax_uid;
  if (!ts) throw new DicomError('file meta information lacks TransferSyntaxUID');

  let body;
  if (ts === TS_DEFLATED_LE) {
    let inflated;
    try {
      inflated = zlib.inflateRawSync(buffer.subarray(meta.pos));
    } catch (e) {
      throw new DicomError(`cannot inflate deflated dataset: ${e.message}`);
    }
    body = new Reader(inflated, 0, true, true);
  } else {
    body = new Reader(buffer, meta.pos, ts !== TS_EXPLICIT_BE, ts !== TS_IMPLICIT_LE);
    // Some writers declare explicit VR but write implicit VR: tolerate it.
    if (body.explicit && body.le && !/^[A-Z]{2}$/.test(buffer.toString('latin1', body.pos + 4, body.pos + 6))) {
      body.explicit = false;
    }
  }
  readElements(body, tags, () => false);

  if (!tags.sop_instance_uid && tags.media_storage_sop_instance_uid) {
    tags.sop_instance_uid = tags.media_storage_sop_instance_uid;
  }
  delete tags.media_storage_sop_instance_uid;
  if (!tags.study_instance_uid) throw new DicomError('DICOM file has no StudyInstanceUID');
  if (!tags.sop_instance_uid) throw new DicomError('DICOM file has no SOPInstanceUID');
  return tags;
}

/** True when the bytes start like a Part-10 file (cheap check, no parsing). */
function looksLikeDicom(buffer) {
  return buffer.length >= 132 && buffer.toString('latin1', 128, 132) === 'DICM';
}

module.exports = { parseDicom, looksLikeDicom, DicomError };
