import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { FatalError, toError } from '../core/errors.js';
import type { HealthReport } from './health.js';
import type { Logger } from '../core/log.js';

export interface MonitorServer {
  /** `http://host:port`, the port the server really got (METRICS_PORT=0 picks a free one). */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serve `GET /metrics` (Prometheus text format from `registry`), `GET /healthz` (the JSON
 * of `health()`, status 200 or 503) and, when `report` is given, `GET /` (the report page, as
 * `npm run report` writes it; 500 when it cannot be built) on plain HTTP. Anything else is 404
 * (405 for another method). A port that cannot be bound is a FatalError (`metrics_port_unusable`).
 */
export async function startMonitorServer(options: {
  host: string;
  port: number;
  registry: Registry;
  health: () => HealthReport;
  /** The report page for `/` (read-only; the caller caches it). */
  report?: () => Promise<string>;
  logger: Logger;
}): Promise<MonitorServer> {
  const { host, port, registry, health, report: reportPage, logger } = options;
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0];
    const isReport = path === '/' && reportPage !== undefined;
    if (path !== '/metrics' && path !== '/healthz' && !isReport)
      return send(res, 404, 'text/plain; charset=utf-8', `Not found: try ${reportPage ? '/, ' : ''}/metrics or /healthz\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return send(res, 405, 'text/plain; charset=utf-8', 'Method not allowed\n');
    }
    if (isReport) {
      return void reportPage().then(
        (html) => send(res, 200, 'text/html; charset=utf-8', html, REPORT_HEADERS),
        (error: unknown) => {
          logger.error('report could not be built', { error: toError(error).message });
          send(res, 500, 'text/plain; charset=utf-8', 'The report could not be built; see the worker log\n');
        },
      );
    }
    if (path === '/healthz') {
      const report = health();
      return send(res, report.httpStatus, 'application/json', JSON.stringify(report.body) + '\n');
    }
    registry.metrics().then(
      (text) => send(res, 200, registry.contentType, text),
      (error: unknown) => {
        logger.error('metrics could not be collected', { error: toError(error).message });
        send(res, 500, 'text/plain; charset=utf-8', 'Metrics could not be collected\n');
      },
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(
        new FatalError(
          'metrics_port_unusable',
          `METRICS_PORT ${port} on METRICS_HOST ${host} cannot be used (${error.code ?? error.message}); choose a free port or unset METRICS_PORT.`,
        ),
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The page loads nothing and runs nothing: say so to the browser too (the page's own meta tag says the same). */
const REPORT_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

function send(res: http.ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
