'use strict';

// OAuth2 token endpoint and Bearer checks on every API endpoint.

const test = require('node:test');
const assert = require('node:assert/strict');

const { startSimulator, stopAll, request, basic, Client, sleep } = require('./support/sim');

let sim;
let shortSim;
let api;
test.before(async () => {
  [sim, shortSim] = await Promise.all([
    startSimulator(['--quiet']),
    startSimulator(['--quiet', '--token-ttl', '2', '--scope', 'upload']),
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
