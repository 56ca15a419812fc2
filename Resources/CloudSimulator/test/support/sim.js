'use strict';

// Starts the simulator the way a user does (`npm start --silent -- …`) as a
// child process on port 0, and offers a small HTTP client for the tests.

const { spawn } = require('child_process');
const http = require('http');
const path = require('path');

const ROOT = path.join(__dirname, '..', '..');
const START_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 10000;

// Every simulator this test process started and has not stopped yet.
const live = new Set();
// Backstop for a test process that ends without its after hooks.
process.on('exit', () => {
  for (const proc of live) proc.child.kill('SIGTERM');
});

/** Runs `npm start --silent -- args` and waits for its JSON line. */
function startSimulator(args = []) {
  const child = spawn('npm', ['start', '--silent', '--', '--port', '0', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc = { child, stdout: '', stderr: '', exited: null };
  live.add(proc);
  child.stderr.on('data', (d) => {
    // keep the tail only: the request log can be long
    proc.stderr = (proc.stderr + d).slice(-20000);
  });
  proc.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      proc.exited = { code, signal };
      live.delete(proc);
      resolve(proc.exited);
    });
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`simulator did not start in time; stderr: ${proc.stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', (d) => {
      proc.stdout += d;
      const nl = proc.stdout.indexOf('\n');
      if (nl >= 0 && !proc.info) {
        clearTimeout(timer);
        try {
          proc.info = JSON.parse(proc.stdout.slice(0, nl));
        } catch (e) {
          reject(new Error(`bad startup line: ${proc.stdout}`));
          return;
        }
        resolve(proc);
      }
    });
    proc.exitPromise.then((e) => {
      clearTimeout(timer);
      if (!proc.info) reject(new Error(`simulator exited (${JSON.stringify(e)}); stderr: ${proc.stderr}`));
    });
  });
}

/** Stops a simulator by PID (SIGTERM, then SIGKILL if it hangs). */
async function stopSimulator(proc) {
  if (!proc || proc.exited) return proc && proc.exited;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  const result = await proc.exitPromise;
  clearTimeout(timer);
  return result;
}

/** Stops every simulator this process started (for after hooks). */
async function stopAll() {
  await Promise.all([...live].map(stopSimulator));
}

/**
 * Runs the start command to completion (for flag errors): through npm, or
 * with `direct` the script npm runs (same code, without npm's start-up cost).
 */
function runStart(args, { direct = false, timeoutMs = 20000 } = {}) {
  return new Promise((resolve) => {
    const [cmd, pre] = direct ? [process.execPath, ['bin/start.js']] : ['npm', ['start', '--silent', '--']];
    const child = spawn(cmd, [...pre, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * HTTP request helper (node's http, so GET may carry a body).
 * Resolves {status, headers, body (Buffer), json} or rejects on socket errors.
 */
function request(method, url, { headers = {}, body, timeoutMs = 15000 } = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    let payload = body;
    const h = { ...headers };
    if (payload !== undefined && !Buffer.isBuffer(payload) && typeof payload !== 'string') {
      payload = JSON.stringify(payload);
      if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['Content-Type'] = 'application/json';
    }
    if (payload !== undefined) h['Content-Length'] = Buffer.byteLength(payload);
    const req = http.request(
      { host: u.hostname, port: u.port, method, path: u.pathname + u.search, headers: h, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          let json;
          try {
            json = buf.length ? JSON.parse(buf.toString('utf8')) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, body: buf, json });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

function basic(id, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** A client for one running simulator. */
class Client {
  constructor(proc) {
    this.info = proc.info;
    this.url = proc.info.url;
  }

  async token(scope = this.info.scope) {
    const q = new URLSearchParams({ grant_type: 'client_credentials', scope });
    const r = await request('GET', `${this.url}/auth/token?${q}`, {
      headers: { Authorization: basic(this.info.client_id, this.info.client_secret) },
    });
    if (r.status !== 200) throw new Error(`token: ${r.status} ${r.body}`);
    return r.json.access_token;
  }

  async auth() {
    if (!this.bearer) this.bearer = await this.token();
    return { Authorization: `Bearer ${this.bearer}` };
  }

  async newOrder(metadata = {}, method = 'GET') {
    const r = await request(method, `${this.url}/new-order`, { headers: await this.auth(), body: metadata });
    if (r.status !== 200) throw new Error(`new-order: ${r.status} ${r.body}`);
    return r.json.order_id;
  }

  async uploadUrl(orderId, filename, extra = {}) {
    const q = new URLSearchParams({ order_id: orderId, filename, ...extra });
    const r = await request('GET', `${this.url}/upload?${q}`, { headers: await this.auth() });
    if (r.status !== 200) throw new Error(`upload: ${r.status} ${r.body}`);
    return r.json;
  }

  put(url, data, contentType = 'application/dicom') {
    return request('PUT', url, { headers: { 'Content-Type': contentType }, body: data });
  }

  /** new URL + PUT; resolves the PUT answer. */
  async send(orderId, filename, data, contentType = 'application/dicom') {
    const { url } = await this.uploadUrl(orderId, filename, { content_type: contentType, size: String(data.length) });
    return this.put(url, data, contentType);
  }

  async studies() {
    return (await request('GET', `${this.url}/_sim/studies`)).json;
  }

  async events(type) {
    const q = type ? `?type=${encodeURIComponent(type)}` : '';
    return (await request('GET', `${this.url}/_sim/events${q}`)).json.events;
  }

  async faults(spec) {
    const r = await request('POST', `${this.url}/_sim/faults`, { body: spec });
    if (r.status !== 200) throw new Error(`faults: ${r.status} ${r.body}`);
    return r.json;
  }

  reset() {
    this.bearer = null;
    return request('POST', `${this.url}/_sim/reset`);
  }
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = { startSimulator, stopSimulator, stopAll, runStart, request, basic, Client, sleep, ROOT };
