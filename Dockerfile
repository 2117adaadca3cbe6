# One Dockerfile for swarmd. Targets:
#   services (the default, last stage): the three services; compose.yaml and
#            deploy/kubernetes pick one with the command
#            (`swarmd serve orchestrator|executor|result-store`).
#   agent:   the sub-agent image the kubernetes executor runs, one pod per
#            attempt (`docker build --target agent -t swarmd-agent .`); it runs
#            `swarmd agent run-subtask` as a non-root user.
FROM python:3.11-slim AS base

RUN apt-get update \
    && apt-get install -y --no-install-recommends git bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/swarmd
COPY pyproject.toml setup.py README.md ./
COPY protos ./protos
COPY services ./services
COPY plugins ./plugins
COPY clients ./clients
# The services image runs the kubernetes executor and the A2A gateway too, so it carries those extras.
RUN pip install --no-cache-dir '.[kubernetes,a2a]' grpcio-health-checking

RUN useradd --create-home --uid 10001 swarmd && mkdir -p /data /workspace && chown swarmd /data /workspace

FROM base AS agent
# The pod's root filesystem is read-only: only /workspace and /tmp are written.
ENV HOME=/tmp
USER 10001
WORKDIR /workspace
ENTRYPOINT ["swarmd"]
CMD ["agent", "run-subtask", "--workspace", "/workspace"]

FROM base AS services
# The grpc_health_probe-style check used by compose and the Kubernetes probes.
COPY scripts/healthcheck.py /usr/local/bin/swarmd-healthcheck
RUN chmod +x /usr/local/bin/swarmd-healthcheck
USER 10001
WORKDIR /workspace
ENTRYPOINT ["swarmd"]
