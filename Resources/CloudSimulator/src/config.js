'use strict';

// Command-line flags of `npm start -- …` and their defaults.

const crypto = require('crypto');

const USAGE = `usage: npm start -- [options]
  --port N               port on 127.0.0.1 (0 or absent: a free port)
  --client-id ID         OAuth2 client id (absent: generated)
  --client-secret S      OAuth2 client secret (absent: generated)
  --scope S              scope the client may request and the API requires (default "upload")
  --token-ttl S          token lifetime in seconds (default 3600)
  --url-ttl S            presigned URL lifetime in seconds, rounded up to whole seconds (default 900)
  --group-window S       seconds between uploads of one study's batch (default 60)
  --overwrite-window S   seconds within which a new batch overwrites the previous one (default 300)
  --listen ADDR          address to listen on (default 127.0.0.1; e.g. 0.0.0.0 inside a container)
  --public-url URL       base URL clients reach it at, used in presigned URLs
                         (default http://127.0.0.1:PORT)
  --data-dir DIR         keep the store's objects in DIR (absent: a temporary folder removed at exit)
  --fast-store           answer presigned PUTs itself (signature and expiry checked, body
                         streamed to a file with its MD5, parsing deferred until a /_sim/
                         route is read) instead of proxying them to the S3 store: for
                         benchmarks, where the store must not be the bottleneck
  --quiet                no request log on stderr
  --help                 this text
Durations accept fractional seconds (e.g. --group-window 1.5).`;

class UsageError extends Error {}

const FLAGS = {
  '--port': 'port',
  '--client-id': 'clientId',
  '--client-secret': 'clientSecret',
  '--scope': 'scope',
  '--token-ttl': 'tokenTtl',
  '--url-ttl': 'urlTtl',
  '--group-window': 'groupWindow',
  '--overwrite-window': 'overwriteWindow',
  '--data-dir': 'dataDir',
  '--listen': 'listen',
  '--public-url': 'publicUrl',
};
const SWITCHES = { '--quiet': 'quiet', '--help': 'help', '--fast-store': 'fastStore' };

function seconds(flag, text, max) {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0 || n > max) {
    throw new UsageError(`${flag} needs a number of seconds above 0 and at most ${max}, not "${text}"`);
  }
  return n;
}

function nonEmpty(flag, text) {
  if (text === '') throw new UsageError(`${flag} needs a value`);
  return text;
}

/** Parses argv (without node and script); throws UsageError on a bad flag. */
function parseArgs(argv) {
  const raw = {};
  for (let i = 0; i < argv.length; i += 1) {
    let arg = argv[i];
    let value;
    const eq = arg.indexOf('=');
    if (arg.startsWith('--') && eq > 0) {
      value = arg.slice(eq + 1);
      arg = arg.slice(0, eq);
    }
    if (SWITCHES[arg] && value === undefined) {
      raw[SWITCHES[arg]] = true;
      continue;
    }
    const key = FLAGS[arg];
    if (!key) throw new UsageError(`unknown option: ${arg}`);
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      value = argv[(i += 1)];
    }
    raw[key] = { flag: arg, value };
  }

  const config = {
    help: Boolean(raw.help),
    quiet: Boolean(raw.quiet),
    fastStore: Boolean(raw.fastStore),
    port: 0,
    clientId: `sim-client-${crypto.randomBytes(4).toString('hex')}`,
    clientSecret: crypto.randomBytes(24).toString('base64url'),
    scope: 'upload',
    tokenTtl: 3600,
    urlTtl: 900,
    groupWindow: 60,
    overwriteWindow: 300,
    dataDir: null,
    listen: '127.0.0.1',
    publicUrl: null,
    bucket: 'cloud-ingest',
  };
  if (raw.port) {
    const { flag, value } = raw.port;
    if (!/^\d+$/.test(value) || Number(value) > 65535) throw new UsageError(`${flag} needs a port number 0-65535`);
    config.port = Number(value);
  }
  if (raw.publicUrl && !/^https?:\/\/[^/?#]+$/.test(raw.publicUrl.value)) {
    throw new UsageError('--public-url needs a base URL such as http://simulator:8080 (no path)');
  }
  for (const key of ['clientId', 'clientSecret', 'scope', 'dataDir', 'listen', 'publicUrl']) {
    if (raw[key]) config[key] = nonEmpty(raw[key].flag, raw[key].value);
  }
  if (raw.scope && !/^[\x21\x23-\x5b\x5d-\x7e]+( [\x21\x23-\x5b\x5d-\x7e]+)*$/.test(config.scope)) {
    throw new UsageError('--scope needs space-separated RFC 6749 scope tokens');
  }
  if (raw.tokenTtl) config.tokenTtl = seconds('--token-ttl', raw.tokenTtl.value, 365 * 86400);
  if (raw.urlTtl) config.urlTtl = seconds('--url-ttl', raw.urlTtl.value, 604800);
  if (raw.groupWindow) config.groupWindow = seconds('--group-window', raw.groupWindow.value, 86400);
  if (raw.overwriteWindow) config.overwriteWindow = seconds('--overwrite-window', raw.overwriteWindow.value, 86400);
  return config;
}

module.exports = { parseArgs, UsageError, USAGE };
