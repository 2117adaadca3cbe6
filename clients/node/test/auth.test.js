'use strict';
// Runs against services that authenticate their callers: SWARMD_AUTH_ADDRESS (an
// orchestrator), SWARMD_AUTH_TOKEN (a client token of tenant A), SWARMD_AUTH_OTHER_TOKEN
// (a client token of tenant B) and SWARMD_AUTH_SWARM (a swarm of tenant A).
// tests/clients/test_node_client.py starts the services and sets them.

const test = require('node:test');
const assert = require('node:assert/strict');
const { SwarmdClient, grpc } = require('../index.js');

const env = process.env;
const address = env.SWARMD_AUTH_ADDRESS;
const skip = !address && 'SWARMD_AUTH_ADDRESS is not set';

test('a client token reads its own tenant\'s swarm', { skip }, async () => {
  const client = new SwarmdClient(address, { token: env.SWARMD_AUTH_TOKEN });
  try {
    const swarm = await client.get(env.SWARMD_AUTH_SWARM);
    assert.equal(swarm.tenant, 'tenant-a');
    const events = await client.watch(env.SWARMD_AUTH_SWARM, { historyOnly: true });
    assert.ok(events.length > 0);
    const listed = await client.list({});
    assert.deepEqual(listed.swarms.map((s) => s.id), [env.SWARMD_AUTH_SWARM]);
  } finally {
    client.close();
  }
});

test('no token, a wrong token, another tenant', { skip }, async () => {
  const cases = [
    ['', grpc.status.UNAUTHENTICATED],
    ['swarmd_wrong', grpc.status.UNAUTHENTICATED],
    [env.SWARMD_AUTH_OTHER_TOKEN, grpc.status.NOT_FOUND],
  ];
  for (const [token, code] of cases) {
    const client = new SwarmdClient(address, { token, timeoutSeconds: 5 });
    try {
      await assert.rejects(client.get(env.SWARMD_AUTH_SWARM), (err) => err.code === code);
      await assert.rejects(client.watch(env.SWARMD_AUTH_SWARM, { historyOnly: true }), (err) => err.code === code);
    } finally {
      client.close();
    }
  }
});
