'use strict';

// Test-only routes under /_sim/ (no authentication; 127.0.0.1 only).

const { FaultError } = require('./faults');
const { fingerprint } = require('./events');
const { HttpError, sendJson, readJsonObject, requireObject, methodNotAllowed } = require('./http');

function only(req, ...methods) {
  if (!methods.includes(req.method)) throw methodNotAllowed(methods);
}

async function faults(sim, req, res) {
  only(req, 'GET', 'POST', 'DELETE');
  if (req.method === 'POST') {
    const spec = await readJsonObject(req);
    try {
      sim.faults.add(spec);
    } catch (err) {
      if (err instanceof FaultError) throw new HttpError(400, 'invalid_request', err.message);
      throw err;
    }
    sim.events.add('faults_queued', { faults: Array.isArray(spec) ? spec : [spec] });
  } else if (req.method === 'DELETE') {
    sim.faults.clear();
  }
  sendJson(res, 200, { faults: sim.faults.list() });
}

async function tokens(sim, req, res) {
  only(req, 'POST');
  const spec = requireObject(await readJsonObject(req, { emptyAs: {} }), 'body');
  const scope = spec.scope === undefined ? sim.config.scope : spec.scope;
  const ttl = spec.ttl === undefined ? sim.config.tokenTtl : spec.ttl;
  if (typeof scope !== 'string') throw new HttpError(400, 'invalid_request', '"scope" must be a string');
  if (typeof ttl !== 'number' || !(ttl > 0)) throw new HttpError(400, 'invalid_request', '"ttl" must be a positive number');
  const answer = sim.tokens.mint(scope, ttl);
  sim.events.add('token_minted', { token: fingerprint(answer.access_token), scope, expires_in: answer.expires_in });
  sendJson(res, 200, answer);
}

async function route(sim, req, res, url) {
  // The fast store defers what it received: every view sees it recorded.
  if (sim.fastStore && url.pathname !== '/_sim/reset') await sim.fastStore.drain();
  switch (url.pathname) {
    case '/_sim/health':
      only(req, 'GET');
      return sendJson(res, 200, sim.health());
    case '/_sim/studies':
      only(req, 'GET');
      return sendJson(res, 200, sim.registry.snapshot());
    case '/_sim/events': {
      only(req, 'GET');
      const since = Number(url.searchParams.get('since') || 0);
      const type = url.searchParams.get('type') || undefined;
      return sendJson(res, 200, { events: sim.events.list({ since, type }) });
    }
    case '/_sim/faults':
      return faults(sim, req, res);
    case '/_sim/tokens':
      return tokens(sim, req, res);
    case '/_sim/reset':
      only(req, 'POST');
      await sim.reset();
      return sendJson(res, 200, { reset: true });
    default:
      throw new HttpError(404, 'not_found', 'no such route');
  }
}

module.exports = { route };
