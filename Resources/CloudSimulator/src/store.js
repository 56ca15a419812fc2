'use strict';

// The S3-compatible store: an in-process @20minutes/s3rver on its own
// 127.0.0.1 port (it checks SigV4 presigned signatures and expiry), plus the
// AWS SDK v3 client/presigner that signs upload URLs and reads objects back.

// The SDK warns about Node 20 on first use; keep that off the terminal.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const S3rver = require('@20minutes/s3rver');
const { DUMMY_ACCOUNT } = require('@20minutes/s3rver/lib/models/account');
const { S3Client, PutObjectCommand, GetObjectCommand } = require('@aws-sdk/client-s3');
const { getSignedUrl, S3RequestPresigner } = require('@aws-sdk/s3-request-presigner');
const { formatUrl } = require('@aws-sdk/core/util');
const { extendedEncodeURIComponent } = require('@smithy/core/protocols');

const REGION = 'us-east-1';
// SigV4 presigned URLs live at most one week.
const MAX_URL_TTL = 604800;

class Store {
  /**
   * @param options {directory, bucket, directPresign}: with directPresign, URLs are signed by
   * the SDK's presigner without the S3 client's middleware (the same URL, a tenth of the CPU)
   */
  constructor({ directory, bucket, directPresign = false }) {
    this.directory = directory;
    this.bucket = bucket;
    this.directPresign = directPresign;
    this.server = null;
    this.url = null;
    this.signers = new Map();
  }

  // Fresh keys per run and per reset: only URLs this simulator signed since
  // its last reset verify.
  rotateKeys() {
    if (this.accessKeyId) DUMMY_ACCOUNT.revokeAccessKey(this.accessKeyId);
    this.accessKeyId = `SIM${crypto.randomBytes(8).toString('hex').toUpperCase()}`;
    this.secretAccessKey = crypto.randomBytes(24).toString('base64url');
    DUMMY_ACCOUNT.createKeyPair(this.accessKeyId, this.secretAccessKey);
    for (const signer of this.signers.values()) signer.destroy();
    this.signers.clear();
    if (this.reader) this.reader.destroy();
    this.reader = this.url ? this.client(this.url) : null;
    this.presigner = null;
  }

  async start() {
    DUMMY_ACCOUNT.revokeAccessKey('S3RVER'); // the well-known default pair must not work
    this.rotateKeys();
    this.server = new S3rver({
      address: '127.0.0.1',
      port: 0,
      silent: true,
      directory: this.directory,
      vhostBuckets: false,
      configureBuckets: [{ name: this.bucket }],
    });
    const { port } = await this.server.run();
    this.url = `http://127.0.0.1:${port}`;
    this.port = port;
    this.reader = this.client(this.url);
  }

  client(endpoint) {
    return new S3Client({
      endpoint,
      region: REGION,
      forcePathStyle: true,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
    });
  }

  /**
   * Presigns a PUT of `key` for clients that reach the store through
   * `publicEndpoint` (the simulator's proxy). Content-Type is signed only
   * when given, so the uploader must then send exactly that value.
   */
  async presignPut(publicEndpoint, key, { contentType, ttlSeconds, signingDate }) {
    const expiresIn = Math.min(MAX_URL_TTL, Math.max(1, Math.ceil(ttlSeconds)));
    // keep Content-Type a signed header rather than a query parameter
    const signing = {
      expiresIn,
      ...(signingDate ? { signingDate } : {}),
      ...(contentType ? { signableHeaders: new Set(['content-type']) } : {}),
    };
    if (this.directPresign) {
      return { url: await this.presignDirect(publicEndpoint, key, contentType, signing), expiresIn };
    }
    let signer = this.signers.get(publicEndpoint);
    if (!signer) {
      signer = this.client(publicEndpoint);
      this.signers.set(publicEndpoint, signer);
    }
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: key,
      ...(contentType ? { ContentType: contentType } : {}),
    });
    const url = await getSignedUrl(signer, command, signing);
    return { url, expiresIn };
  }

  /** The request getSignedUrl builds for a path-style PutObject, signed by the presigner alone. */
  async presignDirect(publicEndpoint, key, contentType, signing) {
    const endpoint = new URL(publicEndpoint);
    const headers = { host: endpoint.host };
    if (contentType) headers['content-type'] = contentType;
    const request = {
      method: 'PUT',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : undefined,
      path: `/${this.bucket}/${key.split('/').map(extendedEncodeURIComponent).join('/')}`,
      query: { 'x-id': 'PutObject' },
      headers,
    };
    return formatUrl(await this.requestPresigner().presign(request, signing));
  }

  /** The SDK's presigner for the current key pair (also what verifies the fast store's PUTs). */
  requestPresigner() {
    if (!this.presigner) {
      this.presigner = new S3RequestPresigner({
        credentials: { accessKeyId: this.accessKeyId, secretAccessKey: this.secretAccessKey },
        region: REGION,
        sha256: this.reader.config.sha256,
      });
    }
    return this.presigner;
  }

  /** Reads an object back from the store (what it really holds). */
  async get(key) {
    const out = await this.reader.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
    return Buffer.from(await out.Body.transformToByteArray());
  }

  /** Forgets every stored object (the bucket is recreated empty) and every issued URL. */
  async reset() {
    for (const entry of fs.readdirSync(this.directory)) {
      fs.rmSync(path.join(this.directory, entry), { recursive: true, force: true });
    }
    await this.server.configureBuckets();
    this.rotateKeys();
  }

  async stop() {
    if (!this.server) return;
    const server = this.server;
    this.server = null;
    if (this.reader) this.reader.destroy();
    for (const signer of this.signers.values()) signer.destroy();
    server.httpServer.closeAllConnections();
    await server.close();
    DUMMY_ACCOUNT.revokeAccessKey(this.accessKeyId);
  }
}

module.exports = { Store, REGION };
