'use strict';

// The ingestion API (docs/REFERENCE.md, Ingestion API): token, new-order, upload,
// add-metadata.

const { OAuthError } = require('./auth');
const { fingerprint } = require('./events');
const { HttpError, sendJson, readBody, readJsonObject, requireObject, methodNotAllowed } = require('./http');
const { NotFoundError } = require('./rules');

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

function oauthFailure(err) {
  const headers = err.status === 401 ? { 'WWW-Authenticate': 'Basic realm="cloud-ingest-sim"' } : {};
  return new HttpError(err.status, err.code, err.message, { ...headers, Pragma: 'no-cache' });
}

async function token(sim, req, res, url) {
  if (req.method !== 'GET' && req.method !== 'POST') throw methodNotAllowed(['GET', 'POST']);
  const params = Object.fromEntries(url.searchParams);
  if (req.method === 'POST') {
    const body = (await readBody(req)).toString('utf8');
    const type = String(req.headers['content-type'] || '');
    if (body !== '' && !type.startsWith('application/x-www-form-urlencoded')) {
      throw new HttpError(400, 'invalid_request', 'POST body must be application/x-www-form-urlencoded');
    }
    Object.assign(params, Object.fromEntries(new URLSearchParams(body)));
  }
  let answer;
  try {
    answer = sim.tokens.issue(req.headers.authorization, params);
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    sim.events.add('token_refused', { error: err.code, method: req.method });
    throw oauthFailure(err);
  }
  sim.events.add('token_issued', {
    token: fingerprint(answer.access_token),
    scope: answer.scope,
    expires_in: answer.expires_in,
    method: req.method,
  });
  sendJson(res, 200, answer, { Pragma: 'no-cache' });
}

// RFC 6750 §3: Bearer failures carry WWW-Authenticate.
function authorize(sim, req) {
  try {
    return sim.tokens.check(req.headers.authorization);
  } catch (err) {
    if (!(err instanceof OAuthError)) throw err;
    const challenge = `Bearer realm="cloud-ingest-sim", error="${err.code}", error_description="${err.message}"`;
    throw new HttpError(err.status, err.code, err.message, { 'WWW-Authenticate': challenge });
  }
}

async function newOrder(sim, req, res) {
  if (req.method !== 'GET' && req.method !== 'POST') throw methodNotAllowed(['GET', 'POST']);
  const tok = authorize(sim, req);
  const metadata = requireObject(await readJsonObject(req, { emptyAs: {} }), 'order metadata');
  const orderId = sim.registry.createOrder(metadata);
  sim.events.add('order_created', {
    order_id: orderId,
    study_instance_uid: metadata.study_instance_uid || null,
    token: fingerprint(tok),
  });
  sendJson(res, 200, { order_id: orderId });
}

function checkFilename(name) {
  if (!name) throw new HttpError(400, 'invalid_request', 'missing filename');
  if (name.length > 255 || /[/\\\0-\x1f]/.test(name) || name === '.' || name === '..') {
    throw new HttpError(400, 'invalid_request', 'filename must be a plain file name');
  }
}

async function upload(sim, req, res, url) {
  if (req.method !== 'GET' && req.method !== 'POST') throw methodNotAllowed(['GET', 'POST']);
  const tok = authorize(sim, req);
  const q = url.searchParams;
  const orderId = q.get('order_id');
  if (!orderId) throw new HttpError(400, 'invalid_request', 'missing order_id');
  if (!UUID_V4.test(orderId) || !sim.registry.hasOrder(orderId)) {
    throw new HttpError(404, 'not_found', 'unknown order_id');
  }
  const filename = q.get('filename');
  checkFilename(filename);
  const contentType = q.get('content_type') || '';
  const sizeText = q.get('size');
  let size = null;
  if (sizeText !== null && sizeText !== '') {
    if (!/^\d+$/.test(sizeText)) throw new HttpError(400, 'invalid_request', 'size must be a whole number');
    size = Number(sizeText);
  }
  const key = `${orderId}/${filename}`;
  const { url: presigned, expiresIn } = await sim.store.presignPut(sim.publicUrl, key, {
    contentType,
    ttlSeconds: sim.config.urlTtl,
  });
  sim.issued.set(key, {
    order_id: orderId,
    filename,
    content_type: contentType || null,
    study_uid: q.get('study_uid') || null,
    size,
  });
  sim.events.add('url_issued', {
    order_id: orderId,
    filename,
    key,
    url: presigned.split('?')[0],
    expires_in: expiresIn,
    content_type: contentType || null,
    token: fingerprint(tok),
  });
  const answer = { url: presigned, expires_in: expiresIn };
  // When Content-Type is signed, the uploader must send exactly this value.
  if (contentType) answer.headers = { 'Content-Type': contentType };
  // A "headers" fault: extra headers, as a compromised API could answer.
  if (req.injectedUploadHeaders) answer.headers = { ...answer.headers, ...req.injectedUploadHeaders };
  sendJson(res, 200, answer);
}

async function addMetadata(sim, req, res, url) {
  if (req.method !== 'PATCH' && req.method !== 'POST') throw methodNotAllowed(['PATCH', 'POST']);
  const tok = authorize(sim, req);
  const orderId = url.searchParams.get('order_id');
  const studyUid = url.searchParams.get('study_uid');
  if (!orderId && !studyUid) throw new HttpError(400, 'invalid_request', 'give order_id or study_uid');
  const metadata = requireObject(await readJsonObject(req), 'metadata');
  let target;
  try {
    target = sim.registry.addMetadata({ orderId, studyUid }, metadata);
  } catch (err) {
    if (err instanceof NotFoundError) throw new HttpError(404, 'not_found', err.message);
    throw err;
  }
  sim.events.add('metadata_added', { ...target, keys: Object.keys(metadata), token: fingerprint(tok) });
  sendJson(res, 200, { updated: true, ...target });
}

module.exports = { token, newOrder, upload, addMetadata };
