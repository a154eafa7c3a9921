# syntax=docker/dockerfile:1
# One image for every Custodian service; compose.yaml picks the process with `command`
# (node services/<name>/dist/main.js). The default command is the embedded deployment.

FROM node:24-bookworm-slim AS build
# better-sqlite3 (embedded event store) compiles a native addon.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund \
 && npm rebuild better-sqlite3 \
 && npx tsc -b tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
# The gateway's data directory in compose.yaml (a named volume takes this owner from the image).
RUN mkdir -p /var/lib/custodian && chown node:node /var/lib/custodian
USER node
EXPOSE 7400 7401 7402 7403
CMD ["node", "services/cli/dist/main.js", "start"]
