# One image for all three swarmd services; compose.yaml picks the service with
# the command (`swarmd serve orchestrator|executor|result-store`).
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/swarmd
COPY pyproject.toml setup.py README.md ./
COPY protos ./protos
COPY services ./services
COPY plugins ./plugins
COPY clients ./clients
RUN pip install --no-cache-dir . grpcio-health-checking

# The grpc_health_probe-style check used by compose.
COPY scripts/healthcheck.py /usr/local/bin/swarmd-healthcheck
RUN chmod +x /usr/local/bin/swarmd-healthcheck

RUN useradd --create-home --uid 10001 swarmd && mkdir -p /data /workspace && chown swarmd /data /workspace
USER swarmd
WORKDIR /workspace
ENTRYPOINT ["swarmd"]
