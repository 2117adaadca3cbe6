'use strict';
// Runs against a live swarmd: SWARMD_ADDRESS (orchestrator), SWARMD_TEST_REPO
// (a git repository) and SWARMD_TEST_MODEL (a replay cassette model string).
// tests/clients/test_node_client.py starts the services and sets them.

const test = require('node:test');
const assert = require('node:assert/strict');
const { SwarmdClient, api, grpc, dateToTimestamp, timestampToDate } = require('../index.js');

const address = process.env.SWARMD_ADDRESS;
const repo = process.env.SWARMD_TEST_REPO;
const model = process.env.SWARMD_TEST_MODEL;

test('the protos load into service constructors', () => {
  for (const name of ['OrchestratorService', 'CoordinatorService', 'ExecutorService', 'ResultStoreService']) {
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
    const entry = listed.swarms.find((s) => s.id === swarmId);
    assert.ok(entry);
    const created = timestampToDate(entry.created_at);
    assert.ok(created instanceof Date && Math.abs(created - Date.now()) < 3600e3, String(created));

    // One subtask without the rest of the swarm: status, result, commit, diff.
    const { subtask, swarm_state: swarmState } = await client.getSubTask(swarmId, 'parser');
    assert.equal(swarmState, 'SWARM_STATE_SUCCEEDED');
    assert.equal(subtask.status, 'SUB_TASK_STATUS_COMPLETED');
    assert.equal(subtask.result.result, 'wrote the parser');
    assert.match(subtask.result.merge.commit, /^[0-9a-f]{40}$/);
    const patch = subtask.result.artifacts.find((a) => a.artifact_type === 'patch');
    assert.match(Buffer.from(patch.content).toString(), /\+X = 1/);
    await assert.rejects(client.getSubTask(swarmId, 'ghost'), (err) => err.code === grpc.status.NOT_FOUND);
    await assert.rejects(client.getSubTask('not a valid id', 'parser'), (err) => err.code === grpc.status.INVALID_ARGUMENT);

    // Subtasks page by page, in plan order.
    const first = await client.listSubTasks(swarmId, { pageSize: 1 });
    assert.deepEqual(first.subtasks.map((s) => s.subtask.id), ['parser']);
    const second = await client.listSubTasks(swarmId, { pageSize: 1, pageToken: first.next_page_token });
    assert.deepEqual(second.subtasks.map((s) => s.subtask.id), ['review']);
    assert.equal(second.next_page_token, '');

    // ListSwarms filtered by state and time, oldest first; an unknown order is refused.
    const filtered = await client.list({
      order_by: 'created_at asc',
      filter: { states: ['SWARM_STATE_SUCCEEDED'], created_after: dateToTimestamp(new Date(created - 1000)) },
    });
    assert.ok(filtered.swarms.some((s) => s.id === swarmId));
    const none = await client.list({ filter: { created_before: dateToTimestamp(new Date(created - 1000)) } });
    assert.equal(none.swarms.length, 0);
    await assert.rejects(client.list({ order_by: 'task' }), (err) => err.code === grpc.status.INVALID_ARGUMENT);

    // A watch filtered by subtask and kind keeps the real sequence numbers.
    const updates = await client.watch(swarmId, { subtaskIds: ['review'], eventKinds: ['subtask_update'] });
    assert.ok(updates.length > 0);
    assert.ok(updates.every((e) => e.kind === 'subtask_update' && e.subtask_update.subtask_id === 'review'));
    const all = new Map(events.map((e) => [e.sequence, e]));
    assert.ok(updates.every((e) => all.get(e.sequence).kind === 'subtask_update'));
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
