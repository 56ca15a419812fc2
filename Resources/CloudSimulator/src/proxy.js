'use strict';

// The presigned URLs point here (the simulator's own port, path
// /<bucket>/<key>); requests are streamed unchanged — method, path, query and
// headers including Host — to the S3 store, which checks the signature and
// expiry. Being in the path lets the simulator inject "put" faults and see
// completed uploads: after the store answers 200, the object is read back and
// recorded before the client gets that answer, so /_sim/studies is up to date
// as soon as the PUT returns.

const crypto = require('crypto');
const http = require('http');
const { Transform } = require('stream');

const { HttpError, methodNotAllowed } = require('./http');
const { ingestObject } = require('./ingest');

// Hop-by-hop headers are not forwarded back; the body is re-sent whole.
const DROP_RESPONSE_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

function objectKey(pathname, bucket) {
  const rest = pathname.slice(bucket.length + 2);
  try {
    return rest
      .split('/')
      .map((part) => decodeURIComponent(part))
      .join('/');
  } catch {
    throw new HttpError(400, 'invalid_request', 'malformed object path');
  }
}

function collect(stream) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

// Passes the body on at `bytesPerSecond` (slices every 100 ms); with TCP
// back-pressure the client sees a slow link.
function throttle(bytesPerSecond) {
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
  return new Transform({
    highWaterMark: slice,
    transform(chunk, _encoding, done) {
      let offset = 0;
      const next = () => {
        if (offset >= chunk.length) return done();
        this.push(chunk.subarray(offset, offset + slice));
        offset += slice;
        setTimeout(next, 100);
      };
      next();
    },
  });
}

const KEEP_IN_MEMORY = 16 * 1024 * 1024;
// Connections to the store are kept alive, as a real service's would be.
const storeAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

async function proxyPut(sim, req, res, url) {
  if (req.method !== 'PUT') throw methodNotAllowed(['PUT']);
  const q = url.searchParams;
  // The store lets anonymous requests through; the service does not.
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !q.get('X-Amz-Signature')) {
    throw new HttpError(403, 'access_denied', 'a presigned URL is required');
  }
  const key = objectKey(url.pathname, sim.config.bucket);
  const pathOnly = url.pathname;

  const headers = { ...req.headers };
  delete headers.expect; // Node already answered 100-continue to the client

  const upstream = http.request({
    host: '127.0.0.1',
    port: sim.store.port,
    method: 'PUT',
    path: req.url,
    headers,
    agent: storeAgent,
  });
  const hash = crypto.createHash('md5');
  let received = 0;
  // Small objects are kept as they stream by, so the service need not read
  // them back from the store; large ones (ZIPs) are read back.
  let chunks = [];
  req.on('data', (chunk) => {
    hash.update(chunk);
    received += chunk.length;
    if (chunks && received <= KEEP_IN_MEMORY) chunks.push(chunk);
    else chunks = null;
  });
  req.on('error', () => {}); // a client that goes away is handled on 'close'
  req.on('close', () => {
    if (!req.complete) upstream.destroy(new Error('client went away'));
  });
  if (req.throttleBytesPerSecond) {
    // Hashing and keeping stay on `req`: they see the same bytes, just later.
    req.pipe(throttle(req.throttleBytesPerSecond)).pipe(upstream);
  } else {
    req.pipe(upstream);
  }

  let answer;
  try {
    answer = await new Promise((resolve, reject) => {
      upstream.on('error', reject);
      upstream.on('response', (up) => collect(up).then((body) => resolve({ up, body }), reject));
    });
  } catch (err) {
    sim.events.add('upload_failed', { key, url: pathOnly, reason: err.message, bytes: received });
    if (req.complete) throw new HttpError(502, 'bad_gateway', 'the store did not answer');
    return;
  }
  const { up, body } = answer;

  if (up.statusCode === 200) {
    const streamedMd5 = hash.digest('hex');
    const storedMd5 = String(up.headers.etag || '').replace(/"/g, '');
    // Only bytes the store confirmed (same MD5) stand in for a read-back.
    const data = chunks && storedMd5 === streamedMd5 ? Buffer.concat(chunks) : null;
    let summary;
    try {
      summary = await ingestObject(sim, key, sim.issued.get(key), req.headers['content-type'], data);
    } catch (err) {
      summary = { outcome: 'error', reason: err.message };
    }
    sim.events.add('upload_ok', {
      key,
      url: pathOnly,
      bytes: received,
      md5: streamedMd5,
      etag: storedMd5,
      ...summary,
    });
  } else {
    const code = /<Code>([^<]*)<\/Code>/.exec(body.toString('utf8'));
    sim.events.add('upload_refused', {
      key,
      url: pathOnly,
      http_status: up.statusCode,
      reason: code ? code[1] : null,
    });
  }

  if (res.destroyed) return;
  const outHeaders = {};
  for (const [name, value] of Object.entries(up.headers)) {
    if (!DROP_RESPONSE_HEADERS.has(name)) outHeaders[name] = value;
  }
  outHeaders['content-length'] = body.length;
  res.writeHead(up.statusCode, outHeaders);
  res.end(body);
}

module.exports = { proxyPut, objectKey, throttle };
