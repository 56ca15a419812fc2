'use strict';

// Checks a NIfTI diffusion bundle: exactly one .nii or .nii.gz image with a
// readable NIfTI-1/2 header, exactly one .bvec and one .bval whose values
// agree (3 rows of N numbers, N b-values). JSON sidecars (as dcm2niix writes
// them) are allowed; any other file is refused.

const path = require('path');
const zlib = require('zlib');

class NiftiError extends Error {}

function kindOf(name) {
  const lower = name.toLowerCase();
  if (lower.endsWith('.nii.gz')) return 'image';
  if (lower.endsWith('.nii')) return 'image';
  if (lower.endsWith('.bvec')) return 'bvec';
  if (lower.endsWith('.bval')) return 'bval';
  if (lower.endsWith('.json')) return 'sidecar';
  return 'other';
}

function checkImage(file) {
  let data = file.data;
  if (file.name.toLowerCase().endsWith('.gz')) {
    try {
      data = zlib.gunzipSync(data);
    } catch (e) {
      throw new NiftiError(`${file.name} is not valid gzip: ${e.message}`);
    }
  }
  if (data.length < 348) throw new NiftiError(`${file.name} is too short for a NIfTI header`);
  const le = data.readInt32LE(0);
  const be = data.readInt32BE(0);
  const magicAt = le === 540 || be === 540 ? 4 : 344;
  const sizes = magicAt === 4 ? 540 : 348;
  if (le !== sizes && be !== sizes) throw new NiftiError(`${file.name} has no NIfTI header (sizeof_hdr)`);
  const magic = data.toString('latin1', magicAt, magicAt + 3);
  if (!['n+1', 'ni1', 'n+2', 'ni2'].includes(magic)) {
    throw new NiftiError(`${file.name} has no NIfTI magic`);
  }
}

function numbers(file) {
  const text = file.data.toString('utf8').trim();
  if (text === '') throw new NiftiError(`${file.name} is empty`);
  return text.split(/\r?\n/).map((line) =>
    line
      .trim()
      .split(/\s+/)
      .map((token) => {
        const n = Number(token);
        if (token === '' || !Number.isFinite(n)) throw new NiftiError(`${file.name} holds a non-number: ${token}`);
        return n;
      }),
  );
}

/** Returns {files: {image, bvec, bval, sidecars}, bvals} or throws NiftiError. */
function checkNiftiBundle(files) {
  const byKind = { image: [], bvec: [], bval: [], sidecar: [], other: [] };
  for (const f of files) byKind[kindOf(path.posix.basename(f.name))].push(f);
  if (byKind.other.length > 0) {
    throw new NiftiError(
      `ZIP holds neither a DICOM study nor a NIfTI bundle (unexpected: ${byKind.other.map((f) => f.name).join(', ')})`,
    );
  }
  for (const kind of ['image', 'bvec', 'bval']) {
    const label = kind === 'image' ? '.nii/.nii.gz' : `.${kind}`;
    if (byKind[kind].length === 0) throw new NiftiError(`NIfTI bundle lacks a ${label} file`);
    if (byKind[kind].length > 1) throw new NiftiError(`NIfTI bundle holds more than one ${label} file`);
  }
  const [image] = byKind.image;
  const [bvec] = byKind.bvec;
  const [bval] = byKind.bval;
  checkImage(image);
  const bvalRows = numbers(bval);
  if (bvalRows.length !== 1) throw new NiftiError(`${bval.name} must hold one line of b-values`);
  const bvals = bvalRows[0];
  const bvecRows = numbers(bvec);
  if (bvecRows.length !== 3 || bvecRows.some((row) => row.length !== bvals.length)) {
    throw new NiftiError(`${bvec.name} must hold 3 rows of ${bvals.length} values to match ${bval.name}`);
  }
  return {
    files: { image: image.name, bvec: bvec.name, bval: bval.name, sidecars: byKind.sidecar.map((f) => f.name) },
    bvals,
  };
}

module.exports = { checkNiftiBundle, NiftiError };
