// A complete Herald webhook receiver in Node.js: it checks each request's
// signature with the npm package standardwebhooks, drops duplicates by
// webhook-id, answers 204 at once and does its work afterwards. Copy it and
// put your work in handle().
//
//   npm ci && HERALD_WEBHOOK_SECRET=whsec_... LISTEN=127.0.0.1:3000 node receiver.js
//
// HERALD_WEBHOOK_SECRET is the webhook's secret (GET .../webhooks/{name}/secret); several,
// separated by commas, while a secret is being rotated. (standardwebhooks 1.1.1 verifies
// v1 HMAC signatures only; for an ed25519 webhook see docs/receiving.md.) It prints the
// address it listens on, then one line per event it takes, with the event's id and type:
// never the event's data, which is health data.
"use strict";
const http = require("http");
const { Webhook } = require("standardwebhooks");

const maxBody = 1 << 20;

const secrets = (process.env.HERALD_WEBHOOK_SECRET || "").split(",").filter(s => s.trim() !== "");
if (secrets.length === 0) {
  console.error("set HERALD_WEBHOOK_SECRET to the webhook's whsec_ secret");
  process.exit(1);
}
const verifiers = secrets.map(s => new Webhook(s.trim()));

// Herald delivers at least once: the same event may come again after a
// timeout or a crash. A real receiver keeps the ids it took in its database,
// in the transaction that does the work; this one remembers them for an hour.
const seen = new Map();
function first(id) {
  const now = Date.now();
  for (const [k, at] of seen) {
    if (now - at > 3600 * 1000) seen.delete(k);
  }
  if (seen.has(id)) return false;
  seen.set(id, now);
  return true;
}

// handle is where a receiver does its work. This one prints the event's id
// and type (eventSubtype in Herald's Welkin format, type in the Standard
// Webhooks format).
function handle(id, event) {
  console.log(`received ${id} ${event.eventSubtype || event.type}`);
}

function verified(body, headers) {
  return verifiers.some(wh => {
    try {
      wh.verify(body, headers); // throws unless a v1 signature checks out and the timestamp is fresh
      return true;
    } catch (e) {
      return false;
    }
  });
}

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/hooks") {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  let size = 0;
  req.on("data", c => {
    size += c.length;
    if (size > maxBody) {
      res.writeHead(413).end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on("end", () => {
    const body = Buffer.concat(chunks); // the raw bytes: verify before parsing
    const headers = {
      "webhook-id": req.headers["webhook-id"] || "",
      "webhook-timestamp": req.headers["webhook-timestamp"] || "",
      "webhook-signature": req.headers["webhook-signature"] || "",
    };
    if (!verified(body, headers)) {
      // 401: Herald retries it, and its delivery log shows the answer.
      res.writeHead(401, { "content-type": "text/plain" }).end("signature does not verify");
      return;
    }
    let event;
    try {
      event = JSON.parse(body.toString("utf8"));
    } catch (e) {
      res.writeHead(400, { "content-type": "text/plain" }).end("body is not JSON");
      return;
    }
    const id = headers["webhook-id"];
    const isNew = first(id);
    // Answer first, work after: a slow answer is a timeout, and a timeout
    // is retried.
    res.writeHead(204).end();
    if (isNew) setImmediate(() => handle(id, event));
  });
});

const [host, port] = (process.env.LISTEN || "127.0.0.1:3000").split(/:(?=[^:]*$)/);
server.listen(Number(port), host, () => {
  const a = server.address();
  console.log(`listening on http://${a.address}:${a.port}`);
});
