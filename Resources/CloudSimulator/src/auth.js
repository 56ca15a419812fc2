'use strict';

// OAuth2 client-credentials grant (RFC 6749 §4.4) with HTTP Basic client
// authentication (§2.3.1), and Bearer token checks (RFC 6750) for the API.

const crypto = require('crypto');

class OAuthError extends Error {
  /** @param status HTTP status; @param code RFC 6749 §5.2 / RFC 6750 §3.1 error code */
  constructor(status, code, description) {
    super(description);
    this.status = status;
    this.code = code;
  }

  body() {
    return { error: this.code, error_description: this.message };
  }
}

function safeEqual(a, b) {
  const ha = crypto.createHash('sha256').update(String(a)).digest();
  const hb = crypto.createHash('sha256').update(String(b)).digest();
  return crypto.timingSafeEqual(ha, hb);
}

// RFC 6749 §2.3.1: id and secret are form-urlencoded (Appendix B) before
// Base64, so a ':' inside either arrives as %3A and the first ':' splits them.
// Form decoding reads '+' as a space and %XX as a UTF-8 byte (so %20 is a
// space too); a raw '%' not followed by two hex digits is malformed.
function formDecode(s) {
  return decodeURIComponent(s.replace(/\+/g, ' '));
}

const MALFORMED = 'malformed';

/** {id, secret}, null without Basic credentials, or MALFORMED. */
function parseBasic(header) {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header || '');
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return MALFORMED;
  }
}

function scopes(text) {
  return String(text || '')
    .split(' ')
    .filter(Boolean);
}

class TokenService {
  /** @param options {clientId, clientSecret, scope, tokenTtl (s), now () => ms} */
  constructor({ clientId, clientSecret, scope, tokenTtl, now = Date.now }) {
    this.clientId = clientId;
    this.clientSecret = clientSecret;
    this.scope = scope;
    this.tokenTtl = tokenTtl;
    this.now = now;
    this.tokens = new Map();
  }

  reset() {
    this.tokens.clear();
  }

  /**
   * Handles a token request. `authorization` is the request's header, `params`
   * the merged query/form parameters. Returns the RFC 6749 §5.1 body or throws
   * OAuthError.
   */
  issue(authorization, params) {
    const creds = parseBasic(authorization);
    if (!creds) throw new OAuthError(401, 'invalid_client', 'client authentication required (HTTP Basic)');
    if (creds === MALFORMED) {
      throw new OAuthError(401, 'invalid_client', 'client credentials are not form-urlencoded (RFC 6749 section 2.3.1)');
    }
    if (!safeEqual(creds.id, this.clientId) || !safeEqual(creds.secret, this.clientSecret)) {
      throw new OAuthError(401, 'invalid_client', 'client authentication failed');
    }
    const grant = params.grant_type;
    if (!grant) throw new OAuthError(400, 'invalid_request', 'missing grant_type');
    if (grant !== 'client_credentials') {
      throw new OAuthError(400, 'unsupported_grant_type', 'only client_credentials is supported');
    }
    const allowed = scopes(this.scope);
    const requested = params.scope === undefined ? allowed : scopes(params.scope);
    const unknown = requested.filter((s) => !allowed.includes(s));
    if (requested.length === 0 || unknown.length > 0) {
      throw new OAuthError(400, 'invalid_scope', `scope not granted to this client: ${unknown.join(' ') || '(empty)'}`);
    }
    return this.mint(requested.join(' '), this.tokenTtl);
  }

  /** Creates a token directly (test route /_sim/tokens). */
  mint(scope, ttlSeconds) {
    const token = crypto.randomBytes(32).toString('base64url');
    this.tokens.set(token, { scope, expiresAt: this.now() + ttlSeconds * 1000 });
    return { access_token: token, token_type: 'Bearer', expires_in: Math.ceil(ttlSeconds), scope };
  }

  /** Checks an API request's Authorization header; throws OAuthError (401/403). */
  check(authorization) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization || '');
    if (!m) throw new OAuthError(401, 'invalid_request', 'missing Bearer token');
    const entry = this.tokens.get(m[1]);
    if (!entry) throw new OAuthError(401, 'invalid_token', 'unknown token');
    if (this.now() >= entry.expiresAt) throw new OAuthError(401, 'invalid_token', 'token expired');
    const needed = scopes(this.scope);
    const granted = scopes(entry.scope);
    if (!needed.every((s) => granted.includes(s))) {
      throw new OAuthError(403, 'insufficient_scope', `token lacks scope: ${this.scope}`);
    }
    return m[1];
  }
}

module.exports = { TokenService, OAuthError, parseBasic };
