# syntax=docker/dockerfile:1
# The operator's image: `msd run` on Node.js, compiled JavaScript only, as a non-root user.
#   docker build -t ghcr.io/mistral-small-operator/operator:0.1.0 .
# (the tag is package.json's version, the Helm chart's appVersion and its default image tag)

ARG NODE_MAJOR=22

# 1. Build: install every dependency and compile src/ to dist/ with tsc
#    (rewriteRelativeImportExtensions turns our `.ts` import specifiers into `.js`).
FROM node:${NODE_MAJOR}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

# 2. Production dependencies only.
FROM node:${NODE_MAJOR}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# 3. Runtime: distroless Node.js (no shell, no package manager), numeric non-root user so
#    that Kubernetes can verify runAsNonRoot. Only the built output and production
#    dependencies are copied; bin/msd.js runs dist/src/cli/entry.js when it exists.
FROM gcr.io/distroless/nodejs${NODE_MAJOR}-debian12:nonroot AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps --chown=0:0 /app/node_modules ./node_modules
COPY --from=build --chown=0:0 /app/dist ./dist
COPY --chown=0:0 package.json ./package.json
COPY --chown=0:0 bin/msd.js ./bin/msd.js
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/msd.js", "run"]
