'use strict';

// Wires the pieces together and owns their lifetime: the S3 store, the HTTP
// server (API, /_sim/ routes, upload proxy) and the in-memory state.

const fs = require('fs');
const os = require('os');
const path = require('path');

const { TokenService } = require('./auth');
const { EventLog } = require('./events');
const { FaultQueue } = require('./faults');
const { Registry } = require('./rules');
const { createServer } = require('./server');
const { Store } = require('./store');
const { FastStore } = require('./fast-store');

class Simulator {
  /** @param config as returned by parseArgs() */
  constructor(config) {
    this.config = config;
    this.tokens = new TokenService({
      clientId: config.clientId,
      clientSecret: config.clientSecret,
      scope: config.scope,
      tokenTtl: config.tokenTtl,
    });
    this.registry = new Registry({ groupWindow: config.groupWindow, overwriteWindow: config.overwriteWindow });
    this.faults = new FaultQueue();
    this.events = new EventLog();
    this.issued = new Map(); // object key -> what its upload URL was issued for
    this.started = Date.now();
    this.tempDir = null;
    this.fastStore = null;
  }

  async start() {
    let directory = this.config.dataDir;
    if (directory) {
      fs.mkdirSync(directory, { recursive: true });
    } else {
      directory = this.tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cloud-ingest-sim-'));
    }
    this.dataDir = path.resolve(directory);
    this.store = new Store({
      directory: this.dataDir,
      bucket: this.config.bucket,
      directPresign: this.config.fastStore,
    });
    await this.store.start();
    if (this.config.fastStore) this.fastStore = new FastStore(this);

    this.server = createServer(this);
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, this.config.listen, resolve);
    });
    this.port = this.server.address().port;
    this.publicUrl = this.config.publicUrl || `http://127.0.0.1:${this.port}`;
  }

  /** The line printed on stdout once ready. */
  announcement() {
    return {
      url: this.publicUrl,
      client_id: this.config.clientId,
      client_secret: this.config.clientSecret,
      scope: this.config.scope,
      s3_url: this.store.url,
      store: this.fastStore ? 'fast' : 'strict',
    };
  }

  health() {
    const c = this.config;
    return {
      status: 'ok',
      url: this.publicUrl,
      s3_url: this.store.url,
      store: this.fastStore ? 'fast' : 'strict',
      bucket: c.bucket,
      data_dir: this.dataDir,
      uptime_s: (Date.now() - this.started) / 1000,
      settings: {
        scope: c.scope,
        token_ttl: c.tokenTtl,
        url_ttl: c.urlTtl,
        group_window: c.groupWindow,
        overwrite_window: c.overwriteWindow,
      },
      counts: {
        orders: this.registry.orders.size,
        studies: this.registry.studies.size,
        events: this.events.events.length,
        faults_queued: this.faults.faults.length,
      },
    };
  }

  /** Forgets everything: state, tokens, faults, events and stored objects. */
  async reset() {
    this.registry.reset();
    this.tokens.reset();
    this.faults.clear();
    this.events.reset();
    this.issued.clear();
    if (this.fastStore) await this.fastStore.reset();
    await this.store.reset();
  }

  async stop() {
    if (this.server) {
      const server = this.server;
      this.server = null;
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    }
    if (this.store) await this.store.stop();
    this.removeTempDir();
  }

  removeTempDir() {
    if (this.tempDir) {
      fs.rmSync(this.tempDir, { recursive: true, force: true });
      this.tempDir = null;
    }
  }
}

module.exports = { Simulator };
