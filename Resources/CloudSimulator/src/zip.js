'use strict';

// Opens an uploaded ZIP and decides what it holds, following the service's
// rule: either one complete DICOM study, or a NIfTI image (.nii/.nii.gz) with
// its .bvec and .bval. Anything else is refused with a reason.

const crypto = require('crypto');
const path = require('path');
const yauzl = require('yauzl');

const { parseDicom, looksLikeDicom, DicomError } = require('./dicom');
const { checkNiftiBundle, NiftiError } = require('./nifti');

const MAX_ENTRIES = 100000;

function openZip(buffer) {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(buffer, { lazyEntries: true, strictFileNames: false, validateEntrySizes: true }, (err, zip) =>
      err ? reject(err) : resolve(zip),
    );
  });
}

function readEntry(zip, entry) {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err) return reject(err);
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('error', reject);
      stream.on('end', () => resolve(Buffer.concat(chunks)));
    });
  });
}

/** Reads every file entry of the archive: [{name, data}] (directories skipped). */
async function readAllEntries(buffer) {
  const zip = await openZip(buffer);
  const files = [];
  try {
    await new Promise((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry) => {
        if (files.length >= MAX_ENTRIES) return reject(new Error('too many entries'));
        if (entry.fileName.endsWith('/')) return zip.readEntry();
        readEntry(zip, entry).then((data) => {
          files.push({ name: entry.fileName, data });
          zip.readEntry();
        }, reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return files;
}

function md5(data) {
  return crypto.createHash('md5').update(data).digest('hex');
}

/**
 * Classifies a ZIP buffer. Resolves to one of
 *   {kind: 'dicom', studyUid, instances: [{name, tags, size, md5}]}
 *   {kind: 'nifti', files: {image, bvec, bval, sidecars}, bvals: [numbers]}
 *   {kind: 'rejected', reason, studyUid?}
 * (never rejects).
 */
async function classifyZip(buffer) {
  let files;
  try {
    files = await readAllEntries(buffer);
  } catch (e) {
    return { kind: 'rejected', reason: `malformed ZIP: ${e.message}` };
  }
  if (files.length === 0) return { kind: 'rejected', reason: 'ZIP holds no files' };

  // A DICOMDIR index is allowed beside the study's files and otherwise ignored.
  const content = files.filter((f) => path.posix.basename(f.name).toUpperCase() !== 'DICOMDIR');
  const dicomFiles = content.filter((f) => looksLikeDicom(f.data));
  if (dicomFiles.length > 0) return classifyDicom(content, dicomFiles);

  try {
    return { kind: 'nifti', ...checkNiftiBundle(content) };
  } catch (e) {
    if (e instanceof NiftiError) return { kind: 'rejected', reason: e.message };
    throw e;
  }
}

function classifyDicom(content, dicomFiles) {
  const instances = [];
  const studies = new Set();
  for (const f of dicomFiles) {
    try {
      const tags = parseDicom(f.data);
      studies.add(tags.study_instance_uid);
      instances.push({ name: f.name, tags, size: f.data.length, md5: md5(f.data) });
    } catch (e) {
      if (!(e instanceof DicomError)) throw e;
      return { kind: 'rejected', reason: `ZIP entry ${f.name}: ${e.message}`, studyUid: onlyOne(studies) };
    }
  }
  const others = content.filter((f) => !looksLikeDicom(f.data));
  if (others.length > 0) {
    return {
      kind: 'rejected',
      reason: `ZIP mixes DICOM files with other files (${others.map((f) => f.name).join(', ')})`,
      studyUid: onlyOne(studies),
    };
  }
  if (studies.size > 1) {
    return { kind: 'rejected', reason: `ZIP holds more than one study (${[...studies].join(', ')})` };
  }
  return { kind: 'dicom', studyUid: onlyOne(studies), instances };
}

function onlyOne(set) {
  return set.size === 1 ? [...set][0] : undefined;
}

module.exports = { classifyZip };
