'use strict';

// The simulator's own log of what it did (tokens, orders, URLs, uploads,
// faults), served at GET /_sim/events. Entries never hold a token, a secret
// or a presigned URL's query string: tokens appear as a short fingerprint.

const crypto = require('crypto');

const MAX_EVENTS = 100000;

function fingerprint(token) {
  return crypto.createHash('sha256').update(token).digest('hex').slice(0, 12);
}

class EventLog {
  constructor() {
    this.reset();
  }

  reset() {
    this.events = [];
    this.seq = 0;
  }

  add(type, fields = {}) {
    this.seq += 1;
    const event = { seq: this.seq, time: new Date().toISOString(), type, ...fields };
    this.events.push(event);
    // Bounded, so a long soak cannot grow memory without limit.
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    return event;
  }

  /** Events after sequence number `since`, optionally of one type. */
  list({ since = 0, type } = {}) {
    return this.events.filter((e) => e.seq > since && (!type || e.type === type));
  }
}

module.exports = { EventLog, fingerprint };
