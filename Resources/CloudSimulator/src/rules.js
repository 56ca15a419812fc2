'use strict';

// What the service received and the rules it applies to it:
// - uploads of one StudyInstanceUID that follow each other within the
//   grouping window form one batch; the batch closes once the window passes;
// - a new batch of the same study that starts within the overwrite window
//   (measured from the previous batch's last upload) replaces the previous
//   batch (marked overwritten); a later one is kept as a duplicate;
// - an instance sent twice within a batch appears once (last wins) but every
//   upload is counted;
// - metadata sent through the API overrides the DICOM tags.
// Times are epoch milliseconds from an injectable clock.

const crypto = require('crypto');

const REJECTED_KEY = '_rejected';
const UNATTRIBUTED_KEY = '_unattributed';

// Study-level DICOM tags that become metadata keys (contract section 1 names).
const STUDY_TAGS = [
  'study_instance_uid',
  'patient_id',
  'patient_name',
  'patient_birth_date',
  'patient_sex',
  'accession_number',
  'study_date',
  'study_time',
  'study_description',
  'referring_physician_name',
  'institution_name',
];

class NotFoundError extends Error {}

function iso(ms) {
  return ms === null || ms === undefined ? null : new Date(ms).toISOString();
}

class Registry {
  /** @param options {groupWindow (s), overwriteWindow (s), now () => ms} */
  constructor({ groupWindow, overwriteWindow, now = Date.now }) {
    this.groupWindowMs = groupWindow * 1000;
    this.overwriteWindowMs = overwriteWindow * 1000;
    this.now = now;
    this.reset();
  }

  reset() {
    this.orders = new Map();
    this.studies = new Map();
    this.seq = 0; // orders metadata updates across orders and studies
  }

  study(uid) {
    let s = this.studies.get(uid);
    if (!s) {
      s = { uid, orders: [], batches: [], patches: [], rejected: [], nifti: [], uploads: 0 };
      this.studies.set(uid, s);
    }
    return s;
  }

  linkOrder(orderId, studyUid) {
    if (!orderId || !studyUid || studyUid.startsWith('_')) return;
    const study = this.study(studyUid);
    if (!study.orders.includes(orderId)) study.orders.push(orderId);
    const order = this.orders.get(orderId);
    if (order) order.studies.add(studyUid);
  }

  createOrder(metadata) {
    const id = crypto.randomUUID();
    const now = this.now();
    this.orders.set(id, {
      id,
      created: now,
      updates: [{ seq: ++this.seq, time: now, metadata }],
      studies: new Set(),
      uploads: 0,
    });
    if (typeof metadata.study_instance_uid === 'string' && metadata.study_instance_uid !== '') {
      this.linkOrder(id, metadata.study_instance_uid);
    }
    return id;
  }

  hasOrder(orderId) {
    return this.orders.has(orderId);
  }

  /** The study an upload of this order belongs to when its content does not say. */
  orderStudy(orderId) {
    const order = this.orders.get(orderId);
    if (!order) return undefined;
    const [first] = order.studies;
    return first;
  }

  /** PATCH /add-metadata: by order id, or else by StudyInstanceUID. */
  addMetadata({ orderId, studyUid }, metadata) {
    const update = { seq: ++this.seq, time: this.now(), metadata };
    if (orderId) {
      const order = this.orders.get(orderId);
      if (!order) throw new NotFoundError(`unknown order_id ${orderId}`);
      order.updates.push(update);
      return { order_id: orderId, study_uids: [...order.studies] };
    }
    const study = this.studies.get(studyUid);
    if (!study || studyUid.startsWith('_')) throw new NotFoundError(`unknown study_uid ${studyUid}`);
    study.patches.push(update);
    return { study_uids: [studyUid] };
  }

  /**
   * Records instances that arrived in one upload (one file, or one ZIP) for
   * one study: [{sop_instance_uid, series_instance_uid, size, md5, filename, tags}].
   * `at` (ms) is when the upload arrived, when it is recorded later than that.
   */
  recordInstances({ studyUid, orderId, source, instances, at }) {
    const now = at ?? this.now();
    const study = this.study(studyUid);
    this.linkOrder(orderId, studyUid);
    const order = this.orders.get(orderId);
    if (order) order.uploads += 1;
    study.uploads += 1;

    let batch = study.batches[study.batches.length - 1];
    if (!batch || now - batch.lastUpload > this.groupWindowMs) {
      const previous = batch;
      batch = {
        index: study.batches.length,
        instances: new Map(),
        uploads: 0,
        firstUpload: now,
        lastUpload: now,
        orders: new Set(),
        sources: new Set(),
        overwritten: false,
        overwrittenBy: null,
        overwrites: null,
        duplicate: false,
        duplicateOf: null,
      };
      if (previous) {
        if (now - previous.lastUpload <= this.overwriteWindowMs) {
          previous.overwritten = true;
          previous.overwrittenBy = batch.index;
          batch.overwrites = previous.index;
        } else {
          batch.duplicate = true;
          batch.duplicateOf = previous.index;
        }
      }
      study.batches.push(batch);
    }
    batch.lastUpload = now;
    batch.uploads += 1;
    if (orderId) batch.orders.add(orderId);
    batch.sources.add(source);
    for (const inst of instances) {
      const earlier = batch.instances.get(inst.sop_instance_uid);
      batch.instances.delete(inst.sop_instance_uid); // re-insert: last wins, in arrival order
      batch.instances.set(inst.sop_instance_uid, {
        ...inst,
        order_id: orderId || null,
        uploads: (earlier ? earlier.uploads : 0) + 1,
        time: now,
      });
    }
    return { batch: batch.index };
  }

  recordRejected(studyUid, entry, at) {
    const key = studyUid || REJECTED_KEY;
    this.linkOrder(entry.order_id, key);
    this.study(key).rejected.push({ ...entry, time: iso(at ?? this.now()) });
    return key;
  }

  recordNifti(studyUid, entry, at) {
    const key = studyUid || UNATTRIBUTED_KEY;
    this.linkOrder(entry.order_id, key);
    const study = this.study(key);
    study.uploads += 1;
    const order = this.orders.get(entry.order_id);
    if (order) order.uploads += 1;
    study.nifti.push({ ...entry, time: iso(at ?? this.now()) });
    return key;
  }

  // Metadata read from the DICOM files of the study's latest batch.
  dicomMetadata(study) {
    const batch = study.batches[study.batches.length - 1];
    if (!batch) return {};
    const instances = [...batch.instances.values()];
    const out = {};
    for (const inst of instances) {
      for (const key of STUDY_TAGS) {
        if (out[key] === undefined && inst.tags[key] !== undefined) out[key] = inst.tags[key];
      }
    }
    const modalities = [...new Set(instances.map((i) => i.tags.modality).filter(Boolean))].sort();
    if (modalities.length) out.modalities = modalities;
    out.number_of_series = String(new Set(instances.map((i) => i.tags.series_instance_uid)).size);
    out.number_of_instances = String(instances.length);
    return out;
  }

  // API metadata of the study (its orders' and its own updates, oldest first).
  apiMetadata(study) {
    const updates = [...study.patches];
    for (const id of study.orders) {
      const order = this.orders.get(id);
      if (order) updates.push(...order.updates);
    }
    updates.sort((a, b) => a.seq - b.seq);
    return Object.assign({}, ...updates.map((u) => u.metadata));
  }

  renderBatch(batch, now) {
    return {
      index: batch.index,
      instances: [...batch.instances.values()].map((i) => ({
        sop_instance_uid: i.sop_instance_uid,
        series_instance_uid: i.series_instance_uid || null,
        size: i.size,
        md5: i.md5,
        filename: i.filename,
        order_id: i.order_id,
        uploads: i.uploads,
        time: iso(i.time),
      })),
      uploads: batch.uploads,
      first_upload: iso(batch.firstUpload),
      last_upload: iso(batch.lastUpload),
      closed: now - batch.lastUpload > this.groupWindowMs,
      overwritten: batch.overwritten,
      overwritten_by: batch.overwrittenBy,
      overwrites: batch.overwrites,
      duplicate: batch.duplicate,
      duplicate_of: batch.duplicateOf,
      orders: [...batch.orders],
      sources: [...batch.sources],
    };
  }

  snapshot() {
    const now = this.now();
    const studies = {};
    for (const [uid, study] of this.studies) {
      const dicom = this.dicomMetadata(study);
      const api = this.apiMetadata(study);
      studies[uid] = {
        study_instance_uid: uid.startsWith('_') ? null : uid,
        orders: [...study.orders],
        uploads: study.uploads,
        batches: study.batches.map((b) => this.renderBatch(b, now)),
        metadata: { ...dicom, ...api },
        dicom_metadata: dicom,
        api_metadata: api,
        rejected: study.rejected,
        nifti: study.nifti,
      };
    }
    const orders = {};
    for (const [id, order] of this.orders) {
      orders[id] = {
        created: iso(order.created),
        metadata: Object.assign({}, ...order.updates.map((u) => u.metadata)),
        studies: [...order.studies],
        uploads: order.uploads,
      };
    }
    return { studies, orders };
  }
}

module.exports = { Registry, NotFoundError, REJECTED_KEY, UNATTRIBUTED_KEY };
