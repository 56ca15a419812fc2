'use strict';

// The simulator's HTTP front door: routes requests to the API, the /_sim/
// routes or the upload proxy, applies injected faults, and logs one line per
// request to stderr (path only: never a query string or a token).

const http = require('http');

const api = require('./api');
const simRoutes = require('./sim-routes');
const { proxyPut, objectKey } = require('./proxy');
const { HttpError, sendJson, sendError, sleep, methodNotAllowed } = require('./http');

const API_ROUTES = {
  '/auth/token': { endpoint: 'token', handler: api.token },
  '/new-order': { endpoint: 'new-order', handler: api.newOrder },
  '/upload': { endpoint: 'upload', handler: api.upload },
  '/add-metadata': { endpoint: 'add-metadata', handler: api.addMetadata },
};

const ERROR_CODES = { 429: 'too_many_requests', 500: 'server_error', 502: 'bad_gateway', 503: 'temporarily_unavailable', 504: 'gateway_timeout' };

// --fast-store: the simulator answers the PUT itself (see fast-store.js).
async function fastPut(sim, req, res, url) {
  if (req.method !== 'PUT') throw methodNotAllowed(['PUT']);
  const q = url.searchParams;
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !q.get('X-Amz-Signature')) {
    throw new HttpError(403, 'access_denied', 'a presigned URL is required');
  }
  await sim.fastStore.put(req, res, url, objectKey(url.pathname, sim.config.bucket));
}

function resolveRoute(sim, pathname) {
  if (pathname.startsWith('/_sim/')) return { endpoint: null, handler: simRoutes.route };
  if (pathname.startsWith(`/${sim.config.bucket}/`)) return { endpoint: 'put', handler: sim.fastStore ? fastPut : proxyPut };
  return API_ROUTES[pathname] || null;
}

// Returns true when the fault answered the request (the handler must not run).
async function applyFault(sim, endpoint, req, res) {
  const fault = sim.faults.take(endpoint);
  if (!fault) return false;
  sim.events.add('fault_injected', { endpoint, ...fault });
  if (fault.delay_ms) {
    await sleep(fault.delay_ms);
    if (res.destroyed || req.socket.destroyed) return true; // the client gave up
  }
  if (fault.reset) {
    req.socket.destroy();
    return true;
  }
  if (fault.status) {
    const headers = fault.retry_after !== null ? { 'Retry-After': String(fault.retry_after) } : {};
    const code = ERROR_CODES[fault.status] || 'injected_fault';
    // Connection: close, so an unread request body cannot confuse the next request.
    sendJson(res, fault.status, { error: code, error_description: `injected fault (${fault.status})` }, {
      ...headers,
      Connection: 'close',
    });
    req.resume();
    return true;
  }
  // A pure delay, a throttle or extra upload headers: carry on normally (the
  // proxy reads the body at the throttled rate; upload merges the headers).
  if (fault.rate_bytes_per_s) req.throttleBytesPerSecond = fault.rate_bytes_per_s;
  if (fault.headers) req.injectedUploadHeaders = fault.headers;
  return false;
}

function logRequest(sim, req, res, started) {
  if (sim.config.quiet) return;
  const path = (req.url || '').split('?')[0];
  const status = res.headersSent ? res.statusCode : 'reset';
  process.stderr.write(`${new Date().toISOString()} ${req.method} ${path} ${status} ${Date.now() - started}ms\n`);
}

function createServer(sim) {
  const server = http.createServer(async (req, res) => {
    const started = Date.now();
    res.on('close', () => logRequest(sim, req, res, started));
    try {
      const url = new URL(req.url, 'http://127.0.0.1');
      const route = resolveRoute(sim, url.pathname);
      if (!route) throw new HttpError(404, 'not_found', 'no such route');
      if (route.endpoint && (await applyFault(sim, route.endpoint, req, res))) return;
      await route.handler(sim, req, res, url);
    } catch (err) {
      if (err instanceof HttpError) return sendError(res, err);
      process.stderr.write(`internal error: ${err.stack || err}\n`);
      sendJson(res, 500, { error: 'server_error', error_description: err.message });
    }
  });
  server.keepAliveTimeout = 5000;
  return server;
}

module.exports = { createServer };
