# Runtime image for the sync job: TypeScript compiled in a build stage, run by plain node.
#   docker build -t auth0-refresh-token-sync .
#   docker run --rm --env-file .env auth0-refresh-token-sync                       # the scheduler (worker)
#   docker run --rm --env-file .env auth0-refresh-token-sync node dist/src/cli/main.js migrate
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-if-stale.js ./scripts/
COPY src ./src
COPY jobs ./jobs
COPY migrations ./migrations
RUN npm run build

FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# Dependencies first, so editing the source does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

# Files stay owned by root (read-only to the app); the process runs unprivileged.
USER node

# node is PID 1 and handles SIGTERM itself (graceful stop); `npm run` would not forward it.
STOPSIGNAL SIGTERM
CMD ["node", "--max-semi-space-size=4", "dist/src/cli/main.js", "worker"]
