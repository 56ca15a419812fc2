'use strict';

// What the service does with an object once the store has accepted it: read
// it back, work out what it is (DICOM instance, DICOM study ZIP, NIfTI
// bundle ZIP, or something to refuse) and record it under its study.

const crypto = require('crypto');

const { parseDicom, DicomError } = require('./dicom');
const { classifyZip } = require('./zip');

function md5(data) {
  return crypto.createHash('md5').update(data).digest('hex');
}

function isZip(contentType, filename) {
  const type = String(contentType || '')
    .split(';')[0]
    .trim()
    .toLowerCase();
  return type === 'application/zip' || type === 'application/x-zip-compressed' || /\.zip$/i.test(filename || '');
}

/**
 * @param sim the simulator (registry, store, events)
 * @param key object key "<order_id>/<filename>"
 * @param upload what the upload URL was issued for ({order_id, filename, study_uid, size}) or undefined
 * @param contentType the Content-Type the PUT carried
 * @param received the bytes the store confirmed (same MD5), or null to read them back
 * @param at when the upload arrived (ms), if it is recorded later (the fast store)
 * @returns a short summary for the event log
 */
async function ingestObject(sim, key, upload, contentType, received = null, at = undefined) {
  const data = received || (await sim.store.get(key));
  const orderId = upload ? upload.order_id : key.split('/')[0];
  const filename = upload ? upload.filename : key.slice(key.indexOf('/') + 1);
  const hash = md5(data);
  const base = { order_id: orderId, filename, size: data.length, md5: hash };
  // Where an upload goes when its content does not name a study.
  const fallbackStudy = (upload && upload.study_uid) || sim.registry.orderStudy(orderId);

  const reject = (reason, studyUid) => {
    const study = sim.registry.recordRejected(studyUid || fallbackStudy, { reason, ...base }, at);
    return { outcome: 'rejected', study, reason };
  };

  if (!upload) return reject('upload to a key no URL was issued for (after a reset?)');
  if (upload.size !== null && upload.size !== data.length) {
    return reject(`size mismatch: announced ${upload.size} bytes, received ${data.length}`);
  }

  if (isZip(contentType, filename)) {
    const zip = await classifyZip(data);
    if (zip.kind === 'rejected') return reject(zip.reason, zip.studyUid);
    if (zip.kind === 'nifti') {
      const study = sim.registry.recordNifti(fallbackStudy, { ...base, files: zip.files, bvals: zip.bvals }, at);
      return { outcome: 'nifti', study };
    }
    const instances = zip.instances.map((i) => ({
      sop_instance_uid: i.tags.sop_instance_uid,
      series_instance_uid: i.tags.series_instance_uid,
      size: i.size,
      md5: i.md5,
      filename: `${filename}:${i.name}`,
      tags: i.tags,
    }));
    const { batch } = sim.registry.recordInstances({ studyUid: zip.studyUid, orderId, source: 'zip', instances, at });
    return { outcome: 'zip', study: zip.studyUid, batch, instances: instances.length };
  }

  let tags;
  try {
    tags = parseDicom(data);
  } catch (err) {
    if (!(err instanceof DicomError)) throw err;
    return reject(err.message);
  }
  const instance = {
    sop_instance_uid: tags.sop_instance_uid,
    series_instance_uid: tags.series_instance_uid,
    size: data.length,
    md5: hash,
    filename,
    tags,
  };
  const { batch } = sim.registry.recordInstances({
    studyUid: tags.study_instance_uid,
    orderId,
    source: 'instance',
    instances: [instance],
    at,
  });
  return { outcome: 'instance', study: tags.study_instance_uid, batch, sop_instance_uid: tags.sop_instance_uid };
}

module.exports = { ingestObject, isZip };
