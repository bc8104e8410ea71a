# Runtime image for the sync job. No build step: tsx (a runtime dependency) runs the TypeScript.
#   docker build -t auth0-refresh-token-sync .
#   docker run --rm --env-file .env auth0-refresh-token-sync                 # the scheduler (worker)
#   docker run --rm --env-file .env auth0-refresh-token-sync node --import tsx src/cli.ts migrate
FROM node:24-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

# Dependencies first, so editing the source does not reinstall them.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
COPY jobs ./jobs
COPY migrations ./migrations

# Files stay owned by root (read-only to the app); the process runs unprivileged.
USER node

# node is PID 1 and handles SIGTERM itself (graceful stop); `npm run` would not forward it.
STOPSIGNAL SIGTERM
CMD ["node", "--import", "tsx", "src/cli.ts", "worker"]
