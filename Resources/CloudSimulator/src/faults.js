'use strict';

// Fault injection: a FIFO queue of faults, each aimed at one endpoint (or
// "*"). A call to an endpoint consumes the first fault that matches it.
// A plain fault fires on each of its next `count` calls; a fault with a
// `probability` covers its next `count` calls (all of them when count is
// absent) and fires on each with that probability, drawn from a PRNG seeded
// with `seed` so that runs repeat. `rate_bytes_per_s` (PUT only) reads the
// upload's body at that rate: a slow link that keeps moving. `headers`
// (upload only) are merged into the upload answer's `headers`, as a
// compromised or careless API would answer them.

const ENDPOINTS = ['token', 'new-order', 'upload', 'put', 'add-metadata'];

class FaultError extends Error {}

// mulberry32: tiny, fast, good enough for fault dice.
function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function optionalNumber(spec, key, { min = 0, max = Infinity, integer = false } = {}) {
  const v = spec[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new FaultError(`"${key}" must be a ${integer ? 'whole ' : ''}number between ${min} and ${max}`);
  }
  return v;
}

const KNOWN_KEYS = new Set(['endpoint', 'status', 'count', 'retry_after', 'delay_ms', 'reset', 'probability', 'seed', 'rate_bytes_per_s', 'headers']);

// RFC 9110 token: what a header name may hold.
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function optionalHeaders(spec, endpoint) {
  const v = spec.headers;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new FaultError('"headers" must be an object of header names to strings');
  if (endpoint !== 'upload') throw new FaultError('"headers" applies to the "upload" endpoint only');
  const names = Object.keys(v);
  if (names.length === 0) throw new FaultError('"headers" must name at least one header');
  for (const name of names) {
    if (!HEADER_NAME.test(name)) throw new FaultError(`"headers": invalid header name "${name}"`);
    if (typeof v[name] !== 'string') throw new FaultError(`"headers": the value of "${name}" must be a string`);
  }
  return { ...v };
}

/** Validates one fault description; returns the normalized fault or throws FaultError. */
function parseFault(spec) {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new FaultError('a fault must be a JSON object');
  for (const key of Object.keys(spec)) {
    if (!KNOWN_KEYS.has(key)) throw new FaultError(`unknown key "${key}"`);
  }
  const endpoint = spec.endpoint;
  if (endpoint !== '*' && !ENDPOINTS.includes(endpoint)) {
    throw new FaultError(`"endpoint" must be one of ${ENDPOINTS.join(', ')} or *`);
  }
  const status = optionalNumber(spec, 'status', { min: 100, max: 599, integer: true });
  const delayMs = optionalNumber(spec, 'delay_ms', { max: 600000 }) || 0;
  const retryAfter = optionalNumber(spec, 'retry_after', { integer: true });
  const probability = optionalNumber(spec, 'probability', { max: 1 });
  const seed = optionalNumber(spec, 'seed', { min: -(2 ** 53), max: 2 ** 53, integer: true });
  let count = optionalNumber(spec, 'count', { min: 1, integer: true });
  if (spec.reset !== undefined && typeof spec.reset !== 'boolean') throw new FaultError('"reset" must be true or false');
  const reset = spec.reset === true;
  const rate = optionalNumber(spec, 'rate_bytes_per_s', { min: 1, max: 2 ** 40, integer: true });
  if (rate !== undefined && endpoint !== 'put') throw new FaultError('"rate_bytes_per_s" applies to the "put" endpoint only');
  const headers = optionalHeaders(spec, endpoint);
  if (!status && !reset && !delayMs && !rate && !headers) {
    throw new FaultError('a fault needs "status", "reset", "delay_ms", "rate_bytes_per_s" or "headers"');
  }
  if (count === undefined) count = probability === undefined ? 1 : Infinity;
  return {
    endpoint,
    status: status || null,
    retry_after: retryAfter === undefined ? null : retryAfter,
    delay_ms: delayMs,
    reset,
    rate_bytes_per_s: rate || null,
    headers: headers || null,
    probability: probability === undefined ? null : probability,
    seed: seed === undefined ? null : seed,
    remaining: count,
    fired: 0,
    random: probability === undefined ? null : seededRandom(seed === undefined ? Date.now() : seed),
  };
}

class FaultQueue {
  constructor() {
    this.faults = [];
  }

  /** Queues one fault or an array of them (all validated before any is queued). */
  add(specs) {
    const list = (Array.isArray(specs) ? specs : [specs]).map(parseFault);
    this.faults.push(...list);
    return this.list();
  }

  clear() {
    this.faults = [];
  }

  /**
   * Called once per request to `endpoint`: returns the fault to apply
   * ({status, retry_after, delay_ms, reset, rate_bytes_per_s, headers}) or null.
   */
  take(endpoint) {
    const index = this.faults.findIndex((f) => f.endpoint === '*' || f.endpoint === endpoint);
    if (index < 0) return null;
    const fault = this.faults[index];
    fault.remaining -= 1;
    if (fault.remaining <= 0) this.faults.splice(index, 1);
    if (fault.random && fault.random() >= fault.probability) return null;
    fault.fired += 1;
    return {
      status: fault.status,
      retry_after: fault.retry_after,
      delay_ms: fault.delay_ms,
      reset: fault.reset,
      rate_bytes_per_s: fault.rate_bytes_per_s,
      headers: fault.headers,
    };
  }

  list() {
    return this.faults.map(({ random, remaining, ...rest }) => ({
      ...rest,
      remaining: Number.isFinite(remaining) ? remaining : null,
    }));
  }
}

module.exports = { FaultQueue, FaultError, ENDPOINTS };
