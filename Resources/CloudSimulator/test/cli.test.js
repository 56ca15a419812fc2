'use strict';

// The start command: its stdout line, its flags, its errors and its shutdown.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');

const { startSimulator, stopSimulator, stopAll, runStart, request, basic } = require('./support/sim');

test.after(stopAll);

async function refused(url) {
  try {
    await request('GET', `${url}/_sim/health`, { timeoutMs: 3000 });
    return false;
  } catch (err) {
    return err.code === 'ECONNREFUSED';
  }
}

test('prints exactly one JSON line with the given credentials, and SIGTERM stops it cleanly', async () => {
  const p = await startSimulator(['--client-id', 'demo id', '--client-secret', 's3cr:t', '--scope', 'ingest']);
  assert.deepEqual(Object.keys(p.info).sort(), ['client_id', 'client_secret', 's3_url', 'scope', 'store', 'url']);
  assert.match(p.info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.match(p.info.s3_url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(p.info.url, p.info.s3_url);
  assert.equal(p.info.client_id, 'demo id');
  assert.equal(p.info.client_secret, 's3cr:t');
  assert.equal(p.info.scope, 'ingest');

  // the flags are in force: these credentials and this scope get a token
  const tok = await request('GET', `${p.info.url}/auth/token?grant_type=client_credentials&scope=ingest`, {
    headers: { Authorization: basic('demo id', 's3cr:t') },
  });
  assert.equal(tok.status, 200);
  assert.equal(tok.json.scope, 'ingest');

  const health = (await request('GET', `${p.info.url}/_sim/health`)).json;
  assert.equal(health.status, 'ok');
  assert.ok(fs.existsSync(health.data_dir), 'temporary data dir exists while running');
  assert.equal(health.settings.token_ttl, 3600);
  assert.equal(health.settings.url_ttl, 900);
  assert.equal(health.settings.group_window, 60);
  assert.equal(health.settings.overwrite_window, 300);

  const exit = await stopSimulator(p);
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(p.stdout, `${JSON.stringify(p.info)}\n`, 'stdout holds the JSON line and nothing else');
  assert.doesNotMatch(p.stderr, /s3cr:t/, 'the secret is not logged on stderr');
  assert.doesNotMatch(p.stderr, /Warning/, 'no SDK or deprecation warning');
  assert.equal(fs.existsSync(health.data_dir), false, 'temporary data dir removed');
  assert.ok(await refused(p.info.url), 'API port closed');
  assert.ok(await refused(p.info.s3_url), 'store port closed');
});

test('generates credentials, takes fractional windows, keeps --data-dir, stops on SIGINT', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-cli-test-'));
  try {
    const p = await startSimulator([
      ...['--group-window', '1.5', '--overwrite-window', '2.25', '--token-ttl', '7', '--url-ttl', '0.5'],
      ...['--data-dir', dir],
    ]);
    assert.ok(p.info.client_id.length > 0);
    assert.ok(p.info.client_secret.length >= 16);
    assert.equal(p.info.scope, 'upload');
    const health = (await request('GET', `${p.info.url}/_sim/health`)).json;
    assert.deepEqual(health.settings, {
      scope: 'upload',
      token_ttl: 7,
      url_ttl: 0.5,
      group_window: 1.5,
      overwrite_window: 2.25,
    });
    assert.equal(health.data_dir, dir);
    assert.ok(fs.existsSync(path.join(dir, health.bucket)), 'bucket folder created in the data dir');
    p.child.kill('SIGINT');
    assert.deepEqual(await p.exitPromise, { code: 0, signal: null });
    assert.ok(fs.existsSync(path.join(dir, health.bucket)), 'data dir kept');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('bad flags get a usage message on stderr and exit code 2', async () => {
  const cases = [
    ['--bogus'],
    ['--port', 'abc'],
    ['--port', '70000'],
    ['--token-ttl', '0'],
    ['--group-window', '-1'],
    ['--url-ttl', 'soon'],
    ['--overwrite-window'],
    ['--client-id', ''],
    ['--scope', 'bad"scope'],
    ['extra'],
  ];
  // the first through npm (its exit code must come through), the rest directly
  const results = await Promise.all(cases.map((args, i) => runStart(args, { direct: i > 0 })));
  for (const [i, r] of results.entries()) {
    const args = cases[i];
    assert.equal(r.code, 2, `exit code for ${args.join(' ')}`);
    assert.equal(r.stdout, '', `nothing on stdout for ${args.join(' ')}`);
    assert.match(r.stderr, /usage: npm start --/);
    assert.doesNotMatch(r.stderr, /\n\s+at .+:\d+:\d+/, 'no stack trace');
  }
});

test('--help prints the usage on stdout and exits 0', async () => {
  const r = await runStart(['--help'], { direct: true });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /--overwrite-window S/);
});
