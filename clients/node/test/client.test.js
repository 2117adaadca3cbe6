'use strict';
// Runs against a live swarmd: SWARMD_ADDRESS (orchestrator), SWARMD_TEST_REPO
// (a git repository) and SWARMD_TEST_MODEL (a replay cassette model string).
// tests/clients/test_node_client.py starts the services and sets them.

const test = require('node:test');
const assert = require('node:assert/strict');
const { SwarmdClient, api, grpc } = require('../index.js');

const address = process.env.SWARMD_ADDRESS;
const repo = process.env.SWARMD_TEST_REPO;
const model = process.env.SWARMD_TEST_MODEL;

test('the protos load into service constructors', () => {
  for (const name of ['OrchestratorService', 'ExecutorService', 'ResultStoreService']) {
    assert.equal(typeof api[name], 'function', name);
  }
});

test('a plan runs and its events stream in order', { skip: !address && 'SWARMD_ADDRESS is not set' }, async () => {
  const client = new SwarmdClient(address);
  try {
    const reply = await client.submit({
      plan: {
        subtasks: [
          { id: 'parser', instruction: 'Create src/calc/parser.py' },
          { id: 'review', instruction: 'Review the repository', read_only: true },
        ],
      },
      config: { model, repo_path: repo, request_delay_ms: 0 },
    });
    const swarmId = reply.swarm.id;
    // Heartbeats every millisecond without an event: they are interleaved
    // with the events, and none of them is taken for one.
    let heartbeats = 0;
    const events = await client.watch(swarmId, { heartbeatIntervalMs: 1, onHeartbeat: () => { heartbeats += 1; } });
    assert.ok(heartbeats > 0, 'the stream carried heartbeats');
    const sequences = events.map((e) => Number(e.sequence));
    assert.deepEqual(sequences, sequences.map((_, i) => i + 1));
    assert.equal(events.at(-1).kind, 'complete');
    const swarm = await client.get(swarmId);
    assert.equal(swarm.state, 'SWARM_STATE_SUCCEEDED');
    assert.deepEqual(swarm.subtasks.map((s) => s.status), ['SUB_TASK_STATUS_COMPLETED', 'SUB_TASK_STATUS_COMPLETED']);
    const listed = await client.list({});
    assert.ok(listed.swarms.some((s) => s.id === swarmId));
  } finally {
    client.close();
  }
});

test('bad input is INVALID_ARGUMENT naming the problem', { skip: !address && 'SWARMD_ADDRESS is not set' }, async () => {
  const client = new SwarmdClient(address);
  try {
    await assert.rejects(
      client.submit({
        plan: { subtasks: [{ id: 'a', instruction: 'x', dependencies: ['ghost'] }] },
        config: { model, repo_path: repo },
      }),
      (err) => err.code === grpc.status.INVALID_ARGUMENT && /ghost/.test(err.details),
    );
  } finally {
    client.close();
  }
});
