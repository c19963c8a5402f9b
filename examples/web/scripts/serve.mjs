#!/usr/bin/env node
// A static server for the built page, bound to 127.0.0.1 only: node scripts/serve.mjs [DIR] [PORT]
// Every response carries the cross-origin isolation headers (headers.mjs), so wasm runs threaded.
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sirv from 'sirv';
import { ISOLATION_HEADERS } from './headers.mjs';

/**
 * Serves `dir` on 127.0.0.1 (port 0: any free one); resolves to the server and its address.
 * `isolate: false` leaves out the cross-origin isolation headers, as a plain static host does.
 */
export function serve(dir, port = 0, { isolate = true } = {}) {
  const handler = sirv(dir, { dev: true, etag: true });
  const server = createServer((req, res) => {
    if (isolate) for (const [name, value] of Object.entries(ISOLATION_HEADERS)) res.setHeader(name, value);
    handler(req, res, () => {
      res.statusCode = 404;
      res.end(`not found: ${req.url}`);
    });
  });
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done({ server, url: `http://127.0.0.1:${server.address().port}/` }));
  });
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  const portArg = args.find((a) => /^\d+$/.test(a));
  const dir = resolve(args.find((a) => a !== portArg) ?? join(import.meta.dirname, '..', 'dist'));
  const port = Number(portArg ?? process.env.PORT ?? 8080);
  serve(dir, port).then(
    ({ url }) => console.log(`the DropClass web demo: ${url} (serving ${dir}; Ctrl-C to stop)`),
    (error) => {
      console.error(`cannot serve on 127.0.0.1:${port}: ${error.message}; give another port: npm run demo -- ${port + 1}`);
      process.exit(1);
    },
  );
}
