# Switchyard: one image for the embedded default and the production mode (EVENTSTORE_URL / MONGODB_URL).
# It runs the compiled JavaScript (`npm run build`), not the TypeScript sources through tsx: it starts faster and
# takes ~65 MiB less memory (see README, "Running the build"). Runtime: Node 24 LTS (Node 20 reached end of life in
# April 2026; the test suite runs on both, see .ci/run).
FROM node:24-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 builds from source when no prebuilt binary matches.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY projections ./projections
RUN npm run build && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000 DATA_DIR=/data
# The code stays root-owned (the process cannot rewrite it); the process runs as the image's unprivileged `node` user
# and owns only its data directory (embedded mode).
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 4000
# Probes the port the server listens on ($PORT, which a deployment may change), on loopback.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD node -e "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"
# The young generation never shrinks below 16 MiB (V8 shrinks it to 1 MiB after a few idle seconds, and the first
# second of traffic after that paid a scavenge every few requests: p99 85-137 ms instead of ~30 ms at 1,200 req/s).
# The same flags as `npm run start:prod` (test/e2e/productionBuild.e2e.test.ts compares them).
CMD ["node", "--min-semi-space-size=16", "dist/src/main.js"]
