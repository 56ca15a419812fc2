'use strict';

// --fast-store: presigned PUTs answered by the simulator itself instead of
// being proxied to the S3 store, so that a benchmark measures the uploader
// rather than the store. The checks a client can fail stay: the SigV4 query
// signature (recomputed with the AWS SDK's presigner from the request's
// method, path, query and signed headers, and compared), the access key and
// the expiry, answered with S3's error codes. The body is streamed to a file
// in the data folder while its MD5 is computed (the ETag). What the service
// does with the object (DICOM parsing, ZIP listing, recording under its study)
// is deferred: done in arrival order, with the arrival time, before any
// /_sim/ route answers, so the same views and faults keep working.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { once } = require('events');

const { HttpError, methodNotAllowed } = require('./http');
const { ingestObject } = require('./ingest');
const { throttle } = require('./proxy');
const { REGION } = require('./store');

// The query parameters the presigner adds itself; every other one is signed as given.
const PRESIGN_PARAMS = new Set([
  'X-Amz-Algorithm',
  'X-Amz-Credential',
  'X-Amz-Date',
  'X-Amz-Expires',
  'X-Amz-SignedHeaders',
  'X-Amz-Signature',
  'X-Amz-Content-Sha256',
]);
const MAX_URL_TTL = 604800;
// Deferred objects are ingested once this many wait, even if nobody looks.
const MAX_PENDING = 5000;
// Bodies up to this size are received in memory and written in one call.
const SMALL_BODY = 1024 * 1024;

class S3Refusal extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function amzDate(text) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text || '');
  return m ? new Date(Date.UTC(m[1], m[2] - 1, m[3], m[4], m[5], m[6])) : null;
}

function queryParameterError(message) {
  return new S3Refusal(400, 'AuthorizationQueryParametersError', message);
}

/**
 * Checks a presigned PUT against the store's current key pair; throws an
 * S3Refusal (the code S3 would answer) when it does not verify.
 */
async function verifyPresigned(store, req, url) {
  const presigner = store.requestPresigner();
  const q = url.searchParams;
  const credential = (q.get('X-Amz-Credential') || '').split('/');
  if (credential.length !== 5 || credential[3] !== 's3' || credential[4] !== 'aws4_request') {
    throw queryParameterError('X-Amz-Credential is malformed');
  }
  const signingDate = amzDate(q.get('X-Amz-Date'));
  if (!signingDate) throw queryParameterError('X-Amz-Date must be in the ISO8601 Long Format');
  const expiresText = q.get('X-Amz-Expires') || '';
  const expires = Number(expiresText);
  if (!/^\d+$/.test(expiresText) || expires > MAX_URL_TTL) {
    throw queryParameterError('X-Amz-Expires must be a number of seconds up to 604800');
  }
  // Checked in the order the S3 store checks them: expiry, key, signature.
  if (Date.now() > signingDate.getTime() + expires * 1000) {
    throw new S3Refusal(403, 'AccessDenied', 'Request has expired');
  }
  if (credential[0] !== store.accessKeyId) {
    throw new S3Refusal(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
  }
  // Parts the presigner fills in itself: a URL whose own differ was not signed as it reads.
  const mismatch = () =>
    new S3Refusal(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
    );
  if (credential[1] !== q.get('X-Amz-Date').slice(0, 8) || credential[2] !== REGION) throw mismatch();
  const payload = q.get('X-Amz-Content-Sha256');
  if (payload !== null && payload !== 'UNSIGNED-PAYLOAD') throw mismatch();
  const signedHeaders = (q.get('X-Amz-SignedHeaders') || '').split(';').filter(Boolean);
  if (!signedHeaders.includes('host')) throw queryParameterError('X-Amz-SignedHeaders must include host');

  const query = {};
  for (const [name, value] of q) if (!PRESIGN_PARAMS.has(name)) query[name] = value;
  const headers = {};
  for (const name of signedHeaders) {
    const value = req.headers[name];
    if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  }
  const [hostname, port] = String(req.headers.host || '').split(':');
  const expected = await presigner.presign(
    {
      method: req.method,
      protocol: 'http:',
      hostname,
      port: port ? Number(port) : undefined,
      // The path as the client sent it: S3 signs it without re-encoding.
      path: req.url.split('?')[0],
      query,
      headers,
    },
    { signingDate, expiresIn: expires, signableHeaders: new Set(signedHeaders) },
  );
  const given = Buffer.from(q.get('X-Amz-Signature') || '');
  const computed = Buffer.from(expected.query['X-Amz-Signature']);
  if (given.length !== computed.length || !crypto.timingSafeEqual(given, computed)) throw mismatch();
}

function sendS3Error(res, refusal) {
  if (res.headersSent || res.destroyed) return;
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${refusal.code}</Code><Message>${refusal.message}</Message></Error>`;
  // Connection: close, so an unread request body cannot confuse the next request.
  res.writeHead(refusal.status, {
    'Content-Type': 'application/xml',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
}

class FastStore {
  /** @param sim the simulator (config, store, issued URLs, events, registry) */
  constructor(sim) {
    this.sim = sim;
    this.directory = path.join(sim.dataDir, 'fast-store', sim.config.bucket);
    this.pending = [];
    this.draining = Promise.resolve();
    this.folders = new Set();
    this.sequence = 0;
  }

  objectPath(key) {
    const file = path.resolve(this.directory, key);
    if (!file.startsWith(this.directory + path.sep)) {
      throw new HttpError(400, 'invalid_request', 'object key outside the bucket');
    }
    return file;
  }

  async put(req, res, url, key) {
    const sim = this.sim;
    const pathOnly = url.pathname;
    try {
      await verifyPresigned(sim.store, req, url);
    } catch (err) {
      if (!(err instanceof S3Refusal)) throw err;
      sim.events.add('upload_refused', { key, url: pathOnly, http_status: err.status, reason: err.code });
      req.resume();
      return sendS3Error(res, err);
    }
    const file = this.objectPath(key);
    const folder = path.dirname(file);
    if (!this.folders.has(folder)) {
      await fs.promises.mkdir(folder, { recursive: true });
      this.folders.add(folder);
    }
    let source = req;
    if (req.throttleBytesPerSecond) {
      source = req.pipe(throttle(req.throttleBytesPerSecond));
      // pipe() does not pass on a client that goes away.
      req.on('close', () => req.complete || source.destroy(new Error('client went away')));
    }
    let body;
    try {
      body = await this.receive(source, file);
    } catch (err) {
      sim.events.add('upload_failed', { key, url: pathOnly, reason: err.message, bytes: err.received || 0 });
      if (req.complete) throw new HttpError(500, 'server_error', 'the store could not write the object');
      return undefined; // the client went away
    }
    const { md5, received } = body;
    this.pending.push({
      key,
      url: pathOnly,
      upload: sim.issued.get(key),
      contentType: req.headers['content-type'],
      file,
      bytes: received,
      md5,
      at: Date.now(),
    });
    if (this.pending.length >= MAX_PENDING) this.drain().catch(() => {});
    if (res.destroyed) return undefined;
    res.writeHead(200, { ETag: `"${md5}"`, 'Content-Length': 0 });
    return res.end();
  }

  /**
   * Reads a body into `file`, computing its MD5 on the way. A small body is
   * kept in memory and written in one call; a larger one is streamed to a file
   * beside, renamed when complete. Either way a broken upload leaves no object.
   */
  async receive(source, file) {
    const hash = crypto.createHash('md5');
    let received = 0;
    let chunks = [];
    let out = null;
    let partial = null;
    try {
      for await (const chunk of source) {
        hash.update(chunk);
        received += chunk.length;
        if (out) {
          if (!out.write(chunk)) await once(out, 'drain');
          continue;
        }
        chunks.push(chunk);
        if (received > SMALL_BODY) {
          partial = `${file}.${process.pid}.${(this.sequence += 1)}.part`;
          out = fs.createWriteStream(partial);
          for (const kept of chunks) out.write(kept);
          chunks = null;
        }
      }
      if (out) {
        await new Promise((resolve, reject) => {
          out.on('error', reject);
          out.end(resolve);
        });
        await fs.promises.rename(partial, file);
      } else {
        await fs.promises.writeFile(file, Buffer.concat(chunks));
      }
    } catch (err) {
      if (out) out.destroy();
      if (partial) await fs.promises.rm(partial, { force: true });
      err.received = received;
      throw err;
    }
    return { md5: hash.digest('hex'), received };
  }

  /** Ingests every object received so far, in arrival order. */
  drain() {
    this.draining = this.draining.then(() => this.ingestPending());
    return this.draining;
  }

  async ingestPending() {
    while (this.pending.length) {
      const batch = this.pending.splice(0, this.pending.length);
      for (const item of batch) await this.ingest(item);
    }
  }

  async ingest(item) {
    const sim = this.sim;
    let summary;
    try {
      const data = await fs.promises.readFile(item.file);
      summary = await ingestObject(sim, item.key, item.upload, item.contentType, data, item.at);
    } catch (err) {
      summary = { outcome: 'error', reason: err.message };
    }
    sim.events.add('upload_ok', {
      key: item.key,
      url: item.url,
      bytes: item.bytes,
      md5: item.md5,
      etag: item.md5,
      ...summary,
      time: new Date(item.at).toISOString(),
    });
  }

  /** Forgets the objects not ingested yet (their files go with the data folder). */
  async reset() {
    this.pending = [];
    await this.draining.catch(() => {});
    this.folders.clear();
  }
}

module.exports = { FastStore, verifyPresigned };
