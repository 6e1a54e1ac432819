# syntax=docker/dockerfile:1
# One image for both components: the agent and the aggregator share the protocol package and
# most dependencies (fastify, pino, ws), so a second image would only add a second build and a
# second tag to keep in step. The command picks the component:
#   agent:      node agent/src/main.ts
#   aggregator: node aggregator/src/main.ts   (the default CMD)
# Node 24 runs the TypeScript sources directly; there is no build step.
#
# Debian slim rather than Alpine: the agent measures DNS through getaddrinfo, and glibc's resolver
# behaves like the one in most workloads it stands in for; musl's does not.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
# Manifests first, so the dependency layer is rebuilt only when they change.
COPY package.json package-lock.json ./
COPY protocol/package.json protocol/
COPY agent/package.json agent/
COPY aggregator/package.json aggregator/
# Production dependencies of every workspace, exactly as locked; no devDependencies (so not the
# `node` npm package either: the base image provides Node).
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
# tini as PID 1: it forwards SIGTERM to node and reaps zombies. Node as PID 1 would get no default
# signal handling from the kernel, so a SIGTERM the app does not handle would be ignored until the
# kubelet's SIGKILL. The app still handles SIGTERM itself to shut down cleanly; tini is the
# backstop. npm, npx and corepack are not needed at run time, so they go.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack
ENV NODE_ENV=production
# glibc serves big allocations from mmap only up to a threshold that grows as they are freed; past it
# the stores' large typed arrays fragment the heap and RSS stays high. A fixed threshold returns them
# to the kernel: a 15-minute 1,000-node mesh held 773 MiB instead of 1,041 MiB (BENCHMARKS.md).
ENV MALLOC_MMAP_THRESHOLD_=131072
WORKDIR /app
COPY --from=deps /app ./
# Sources only: .dockerignore keeps tests, node_modules and everything else out.
COPY protocol/ protocol/
COPY agent/ agent/
COPY aggregator/ aggregator/
# A numeric user so Kubernetes' runAsNonRoot can verify it: the base image's "node" user (1000).
# Files stay owned by root, so the app cannot modify itself.
USER 1000:1000
EXPOSE 8080 8081 8081/udp
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "aggregator/src/main.ts"]
