'use strict';
// Runs against an orchestrator that requires mutual TLS: SWARMD_TLS_ADDRESS, and the
// PEM files in SWARMD_TEST_PKI (ca.pem, client.pem, client-key.pem).
// tests/clients/test_node_client.py starts the services and sets them.

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { SwarmdClient, grpc } = require('../index.js');

const address = process.env.SWARMD_TLS_ADDRESS;
const pki = process.env.SWARMD_TEST_PKI || '';
const skip = !address && 'SWARMD_TLS_ADDRESS is not set';

test('mutual TLS with the client certificate', { skip }, async () => {
  const client = new SwarmdClient(address, {
    tls: { ca: path.join(pki, 'ca.pem'), cert: path.join(pki, 'client.pem'), key: path.join(pki, 'client-key.pem') },
  });
  try {
    const reply = await client.list({});
    assert.ok(Array.isArray(reply.swarms));
  } finally {
    client.close();
  }
});

test('no client certificate, no connection', { skip }, async () => {
  for (const tls of [{ ca: path.join(pki, 'ca.pem') }, undefined]) {
    const client = new SwarmdClient(address, { timeoutSeconds: 5, tls });
    try {
      await assert.rejects(client.list({}), (err) => err.code === grpc.status.UNAVAILABLE);
    } finally {
      client.close();
    }
  }
});
