'use strict';

// OAuth2 token endpoint and Bearer checks on every API endpoint.

const test = require('node:test');
const assert = require('node:assert/strict');

const { startSimulator, stopAll, request, basic, Client, sleep } = require('./support/sim');

// A client id and secret holding what form encoding must protect.
const SPECIAL_ID = 'site 7/ü:x';
const SPECIAL_SECRET = 'a+b%c:d&e f';

let sim;
let shortSim;
let specialSim;
let api;
test.before(async () => {
  [sim, shortSim, specialSim] = await Promise.all([
    startSimulator(['--quiet']),
    startSimulator(['--quiet', '--token-ttl', '2', '--scope', 'upload']),
    startSimulator(['--quiet', '--client-id', SPECIAL_ID, '--client-secret', SPECIAL_SECRET]),
  ]);
  api = new Client(sim);
});
test.after(async () => {
  await stopAll();
});

function tokenUrl(params) {
  return `${sim.info.url}/auth/token?${new URLSearchParams(params)}`;
}

const goodAuth = () => ({ Authorization: basic(sim.info.client_id, sim.info.client_secret) });

function assertRfc6749Error(r, status, code) {
  assert.equal(r.status, status);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(r.json.error, code);
  assert.equal(typeof r.json.error_description, 'string');
  assert.equal(r.headers['cache-control'], 'no-store');
}

test('GET token with Basic auth and query parameters', async () => {
  const r = await request('GET', tokenUrl({ grant_type: 'client_credentials', scope: 'upload' }), { headers: goodAuth() });
  assert.equal(r.status, 200);
  assert.equal(r.json.token_type, 'Bearer');
  assert.equal(r.json.expires_in, 3600);
  assert.equal(r.json.scope, 'upload');
  assert.match(r.json.access_token, /^[A-Za-z0-9_-]{20,}$/);
  assert.equal(r.headers['cache-control'], 'no-store');
});

test('POST token with a form body; scope defaults to the client scope', async () => {
  const r = await request('POST', `${sim.info.url}/auth/token`, {
    headers: { ...goodAuth(), 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  assert.equal(r.status, 200);
  assert.equal(r.json.scope, 'upload');
  // the token works on the API
  const order = await request('POST', `${sim.info.url}/new-order`, {
    headers: { Authorization: `Bearer ${r.json.access_token}` },
    body: {},
  });
  assert.equal(order.status, 200);
});

test('missing or wrong client authentication gets 401 invalid_client', async () => {
  const params = { grant_type: 'client_credentials', scope: 'upload' };
  const missing = await request('GET', tokenUrl(params));
  assertRfc6749Error(missing, 401, 'invalid_client');
  assert.match(String(missing.headers['www-authenticate']), /^Basic /);
  const wrongSecret = await request('GET', tokenUrl(params), {
    headers: { Authorization: basic(sim.info.client_id, 'wrong') },
  });
  assertRfc6749Error(wrongSecret, 401, 'invalid_client');
  const wrongId = await request('GET', tokenUrl(params), {
    headers: { Authorization: basic('someone-else', sim.info.client_secret) },
  });
  assertRfc6749Error(wrongId, 401, 'invalid_client');
  const notBasic = await request('GET', tokenUrl(params), { headers: { Authorization: 'Bearer abc' } });
  assertRfc6749Error(notBasic, 401, 'invalid_client');
  // POST the same
  const post = await request('POST', `${sim.info.url}/auth/token`, {
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  assertRfc6749Error(post, 401, 'invalid_client');
});

test('bad grant, bad scope and bad method get RFC 6749 errors', async () => {
  assertRfc6749Error(await request('GET', tokenUrl({ scope: 'upload' }), { headers: goodAuth() }), 400, 'invalid_request');
  assertRfc6749Error(
    await request('GET', tokenUrl({ grant_type: 'password' }), { headers: goodAuth() }),
    400,
    'unsupported_grant_type',
  );
  assertRfc6749Error(
    await request('GET', tokenUrl({ grant_type: 'client_credentials', scope: 'admin' }), { headers: goodAuth() }),
    400,
    'invalid_scope',
  );
  const put = await request('PUT', tokenUrl({ grant_type: 'client_credentials' }), { headers: goodAuth() });
  assert.equal(put.status, 405);
  assert.equal(put.headers.allow, 'GET, POST');
});

test('every API endpoint refuses a missing, unknown or malformed token with 401', async () => {
  const orderId = await api.newOrder({});
  const calls = [
    ['GET', '/new-order'],
    ['POST', '/new-order'],
    ['GET', `/upload?order_id=${orderId}&filename=a.dcm`],
    ['PATCH', `/add-metadata?order_id=${orderId}`],
  ];
  const ordersBefore = Object.keys((await api.studies()).orders).length;
  for (const [method, path] of calls) {
    for (const authorization of [undefined, 'Bearer not-a-token', 'Basic abc', 'Bearer']) {
      const headers = authorization ? { Authorization: authorization } : {};
      const r = await request(method, `${sim.info.url}${path}`, { headers, body: {} });
      assert.equal(r.status, 401, `${method} ${path} with ${authorization}`);
      assert.match(String(r.headers['www-authenticate']), /^Bearer realm=/);
      assert.ok(r.json.error);
    }
  }
  // nothing was created by the refused calls
  const snapshot = await api.studies();
  assert.equal(Object.keys(snapshot.orders).length, ordersBefore);
  assert.deepEqual(snapshot.orders[orderId].metadata, {});
  assert.equal((await api.events('url_issued')).length, 0);
});

test('a token with another scope gets 403 insufficient_scope on every API endpoint', async () => {
  const minted = await request('POST', `${sim.info.url}/_sim/tokens`, { body: { scope: 'read' } });
  assert.equal(minted.status, 200);
  const headers = { Authorization: `Bearer ${minted.json.access_token}` };
  const orderId = await api.newOrder({});
  for (const [method, path] of [
    ['GET', '/new-order'],
    ['GET', `/upload?order_id=${orderId}&filename=a.dcm`],
    ['PATCH', `/add-metadata?order_id=${orderId}`],
  ]) {
    const r = await request(method, `${sim.info.url}${path}`, { headers, body: {} });
    assert.equal(r.status, 403, `${method} ${path}`);
    assert.equal(r.json.error, 'insufficient_scope');
  }
});

test('an expired token gets 401 (token lifetime from --token-ttl)', async () => {
  const short = new Client(shortSim);
  const r = await request(
    'GET',
    `${shortSim.info.url}/auth/token?grant_type=client_credentials&scope=upload`,
    { headers: { Authorization: basic(shortSim.info.client_id, shortSim.info.client_secret) } },
  );
  assert.equal(r.json.expires_in, 2);
  const headers = { Authorization: `Bearer ${r.json.access_token}` };
  const before = await request('GET', `${shortSim.info.url}/new-order`, { headers, body: {} });
  assert.equal(before.status, 200);
  await sleep(2200);
  const after = await request('GET', `${shortSim.info.url}/new-order`, { headers, body: {} });
  assert.equal(after.status, 401);
  assert.equal(after.json.error, 'invalid_token');
  assert.match(after.json.error_description, /expired/);
  // a new token works again
  short.bearer = await short.token();
  assert.ok(await short.newOrder({}));
});

test('the event log records tokens by fingerprint, never the token itself', async () => {
  const token = await api.token();
  const events = await api.events('token_issued');
  assert.ok(events.length >= 1);
  const text = JSON.stringify(await api.events());
  assert.equal(text.includes(token), false);
  assert.equal(text.includes(sim.info.client_secret), false);
  assert.ok((await api.events('token_refused')).length >= 1);
});

function rawBasic(id, secret) {
  return `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
}

// application/x-www-form-urlencoded as HTML forms write it: space as '+'.
function formBasic(id, secret) {
  const encode = (v) => new URLSearchParams({ v }).toString().slice(2);
  return `Basic ${Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')}`;
}

test('credentials with special characters are form-decoded after Base64 (RFC 6749 section 2.3.1)', async () => {
  assert.equal(specialSim.info.client_id, SPECIAL_ID);
  assert.equal(specialSim.info.client_secret, SPECIAL_SECRET);
  const url = `${specialSim.info.url}/auth/token?grant_type=client_credentials`;
  const get = (authorization) => request('GET', url, { headers: { Authorization: authorization } });

  // Percent-encoded (space as %20) and form-encoded (space as '+') both decode to the same.
  for (const authorization of [basic(SPECIAL_ID, SPECIAL_SECRET), formBasic(SPECIAL_ID, SPECIAL_SECRET)]) {
    const r = await get(authorization);
    assert.equal(r.status, 200, r.body);
    assert.equal(typeof r.json.access_token, 'string');
  }
  // Sent unencoded, the id's ':' splits too early and the secret's '%c' is malformed.
  const raw = await get(rawBasic(SPECIAL_ID, SPECIAL_SECRET));
  assertRfc6749Error(raw, 401, 'invalid_client');
  const rawSecret = await get(`Basic ${Buffer.from(`${encodeURIComponent(SPECIAL_ID)}:${SPECIAL_SECRET}`).toString('base64')}`);
  assertRfc6749Error(rawSecret, 401, 'invalid_client');
  assert.match(rawSecret.json.error_description, /form-urlencoded/);
  // A '+' left unencoded is a space once decoded: not the secret.
  const rawPlus = `${encodeURIComponent(SPECIAL_ID)}:${encodeURIComponent(SPECIAL_SECRET).replace('%2B', '+')}`;
  assertRfc6749Error(await get(`Basic ${Buffer.from(rawPlus).toString('base64')}`), 401, 'invalid_client');
});

test('parseBasic splits on the first colon, then form-decodes each part', () => {
  const { parseBasic } = require('../src/auth');
  const header = (text) => `Basic ${Buffer.from(text).toString('base64')}`;
  assert.deepEqual(parseBasic(header('a%3Ab:c%3Ad')), { id: 'a:b', secret: 'c:d' });
  assert.deepEqual(parseBasic(header('id:x:y')), { id: 'id', secret: 'x:y' });
  assert.deepEqual(parseBasic(header('a+b:%2B%25%26%20+')), { id: 'a b', secret: '+%&  ' });
  assert.deepEqual(parseBasic(header('%C3%BC:s')), { id: 'ü', secret: 's' });
  assert.equal(parseBasic(header('nocolon')), null);
  assert.equal(parseBasic('Bearer x'), null);
  assert.equal(parseBasic(header('id:100%')), 'malformed');
});
