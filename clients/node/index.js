'use strict';
// swarmd's Node.js client: the swarmd.v1 services, loaded from ../../protos
// with @grpc/proto-loader (field names kept as in the .proto files), plus a
// small promise-based wrapper around the OrchestratorService.

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_ROOT = path.resolve(__dirname, '..', '..', 'protos');
const FILES = ['orchestrator.proto', 'coordinator.proto', 'executor.proto', 'result_store.proto'].map((f) => `swarmd/v1/${f}`);

function loadApi() {
  const definition = protoLoader.loadSync(FILES, {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).swarmd.v1;
}

const api = loadApi();

// A google.protobuf.Timestamp as loaded here ({ seconds: '<int64 as string>', nanos })
// as a Date (millisecond precision); null when the field is unset.
function timestampToDate(ts) {
  if (!ts) return null;
  return new Date(Number(BigInt(ts.seconds || '0') * 1000n) + Math.floor((ts.nanos || 0) / 1e6));
}

function deadline(seconds) {
  return new Date(Date.now() + seconds * 1000);
}

// TLS settings: { ca, cert, key, serverName } (PEM file paths), each defaulting to
// SWARMD_TLS_CA, SWARMD_TLS_CERT, SWARMD_TLS_KEY and SWARMD_TLS_SERVER_NAME; with
// none set (and SWARMD_TLS unset) the client dials in plaintext.
function tlsSettings(tls = {}) {
  const env = process.env;
  return {
    ca: tls.ca || env.SWARMD_TLS_CA || '',
    cert: tls.cert || env.SWARMD_TLS_CERT || '',
    key: tls.key || env.SWARMD_TLS_KEY || '',
    serverName: tls.serverName || env.SWARMD_TLS_SERVER_NAME || '',
    enabled: Boolean(tls.enabled) || ['1', 'true', 'yes'].includes((env.SWARMD_TLS || '').toLowerCase()),
  };
}

function channelCredentials(tls) {
  const settings = tlsSettings(tls);
  if (!settings.enabled && !settings.ca && !settings.cert) {
    return { credentials: grpc.credentials.createInsecure(), options: {} };
  }
  if (Boolean(settings.cert) !== Boolean(settings.key)) {
    throw new Error('a client certificate needs both tls.cert and tls.key');
  }
  const read = (file) => (file ? fs.readFileSync(file) : null);
  const credentials = grpc.credentials.createSsl(read(settings.ca), read(settings.key), read(settings.cert));
  const options = settings.serverName ? { 'grpc.ssl_target_name_override': settings.serverName } : {};
  return { credentials, options };
}

// The bearer token to present: the token option, else SWARMD_TOKEN, else the first
// line of the file SWARMD_TOKEN_FILE names; '' sends none (services without
// authentication).
function bearerToken(token) {
  if (token !== undefined && token !== null) return String(token).trim();
  const env = process.env;
  if ((env.SWARMD_TOKEN || '').trim()) return env.SWARMD_TOKEN.trim();
  if ((env.SWARMD_TOKEN_FILE || '').trim()) {
    const text = fs.readFileSync(env.SWARMD_TOKEN_FILE.trim(), 'utf8').trim();
    if (!text) throw new Error(`the token file ${env.SWARMD_TOKEN_FILE} is empty`);
    return text.split('\n')[0].trim();
  }
  return '';
}

// Promise-based access to the orchestrator; every call has a deadline and, with a
// token, carries "authorization: Bearer <token>" (as call metadata, so it works
// over plaintext loopback behind a mesh sidecar as well as over TLS).
class SwarmdClient {
  constructor(address, { timeoutSeconds = 30, tls, token } = {}) {
    this.timeoutSeconds = timeoutSeconds;
    const { credentials, options } = channelCredentials(tls);
    this.stub = new api.OrchestratorService(address, credentials, options);
    this.token = bearerToken(token);
  }

  _metadata() {
    const metadata = new grpc.Metadata();
    if (this.token) metadata.set('authorization', `Bearer ${this.token}`);
    return metadata;
  }

  _unary(method, request, timeoutSeconds) {
    return new Promise((resolve, reject) => {
      const options = { deadline: deadline(timeoutSeconds || this.timeoutSeconds) };
      this.stub[method](request, this._metadata(), options, (err, reply) => (err ? reject(err) : resolve(reply)));
    });
  }

  submit(request) {
    return this._unary('SubmitSwarm', request, Math.max(this.timeoutSeconds, 300));
  }

  get(swarmId) {
    return this._unary('GetSwarm', { swarm_id: swarmId }).then((r) => r.swarm);
  }

  // One page of swarms. request: { page_size, page_token, order_by ('created_at desc',
  // the default, or 'created_at asc'), filter: { states, labels, created_after,
  // created_before } } (times as Timestamps; dateToTimestamp converts a Date).
  list(request = {}) {
    return this._unary('ListSwarms', request);
  }

  // One subtask of a swarm: { subtask (SubTaskState: status, result with the
  // "patch" artifact and merge.commit), swarm_state }.
  getSubTask(swarmId, subtaskId) {
    return this._unary('GetSubTask', { swarm_id: swarmId, subtask_id: subtaskId });
  }

  // One page of a swarm's subtasks in plan order: { subtasks, next_page_token, swarm_state }.
  listSubTasks(swarmId, { pageSize = 0, pageToken = '', statuses = [] } = {}) {
    return this._unary('ListSubTasks', { swarm_id: swarmId, page_size: pageSize, page_token: pageToken, statuses });
  }

  cancel(swarmId, reason = '') {
    return this._unary('CancelSwarm', { swarm_id: swarmId, reason });
  }

  // Resolves with every event once the swarm is terminal (or the history, with historyOnly).
  // The stream's heartbeats (sent after heartbeatIntervalMs without an event; 0 = the
  // orchestrator's setting) are not events: they go to onHeartbeat, if given.
  // subtaskIds and eventKinds (names of SwarmEvent's kind fields) filter the events.
  watch(
    swarmId,
    { afterSequence = 0, historyOnly = false, heartbeatIntervalMs = 0, subtaskIds = [], eventKinds = [], onEvent, onHeartbeat } = {},
  ) {
    return new Promise((resolve, reject) => {
      const events = [];
      const call = this.stub.WatchSwarm(
        {
          swarm_id: swarmId,
          after_sequence: String(afterSequence),
          history_only: historyOnly,
          heartbeat_interval_ms: String(heartbeatIntervalMs),
          subtask_ids: subtaskIds,
          event_kinds: eventKinds,
        },
        this._metadata(),
      );
      call.on('data', (reply) => {
        if (!reply.event) {
          if (onHeartbeat && reply.heartbeat) onHeartbeat(reply.heartbeat);
          return;
        }
        events.push(reply.event);
        if (onEvent) onEvent(reply.event);
      });
      call.on('error', reject);
      call.on('end', () => resolve(events));
    });
  }

  close() {
    this.stub.close();
  }
}

// A Date as a google.protobuf.Timestamp for requests (e.g. ListSwarms' filter).
function dateToTimestamp(date) {
  const ms = date.getTime();
  const seconds = Math.floor(ms / 1000);
  return { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1e6 };
}

module.exports = { api, grpc, SwarmdClient, bearerToken, dateToTimestamp, timestampToDate };
