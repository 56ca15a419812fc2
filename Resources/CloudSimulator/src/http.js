'use strict';

// Small HTTP helpers shared by the API, the /_sim/ routes and the proxy.

const MAX_BODY = 16 * 1024 * 1024;

/** An error that becomes a JSON answer {"error","error_description"}. */
class HttpError extends Error {
  constructor(status, code, description, headers = {}) {
    super(description);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

function sendJson(res, status, body, headers = {}) {
  if (res.headersSent || res.destroyed) return;
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(res, err) {
  sendJson(res, err.status, { error: err.code, error_description: err.message }, err.headers);
}

function readBody(req, limit = MAX_BODY) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, 'payload_too_large', `body larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Reads a JSON object body; an empty body is `emptyAs` (or an error when undefined). */
async function readJsonObject(req, { emptyAs } = {}) {
  const raw = (await readBody(req)).toString('utf8');
  if (raw.trim() === '') {
    if (emptyAs !== undefined) return emptyAs;
    throw new HttpError(400, 'invalid_request', 'a JSON body is required');
  }
  let value;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    throw new HttpError(400, 'invalid_request', `body is not valid JSON: ${e.message}`);
  }
  return value;
}

function requireObject(value, what) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpError(400, 'invalid_request', `${what} must be a JSON object`);
  }
  return value;
}

function methodNotAllowed(allowed) {
  return new HttpError(405, 'method_not_allowed', `use ${allowed.join(' or ')}`, { Allow: allowed.join(', ') });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = { HttpError, sendJson, sendError, readBody, readJsonObject, requireObject, methodNotAllowed, sleep };
