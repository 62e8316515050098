// index.ts — the shop's reviews component, in AssemblyScript: proof that a
// Keel component need not be C. keel.yaml routes GET /api/reviews and every
// path below it here (a longer prefix than the gateway's /api/*):
//   GET /api/reviews       the reviewed products: count and average stars
//   GET /api/reviews/ID    catalog.get (a call into the C catalog, in
//                          process), then the product with its reviews
// Answers are JSON with an X-Written-In header; a catalog reply other than
// 200 is passed on (404 for an unknown product), and a method other than
// GET or HEAD is a 405 with Allow, as the gateway answers. A failed catalog call, or
// an operation other than "handle", fails the request: Keel answers 500
// with the request id and logs why.
import { readRequest, respond, fail, failed, call } from "./wapc";
import * as keel from "./keel";

// The reviews, compiled in (the catalog owns the products themselves).
class Review {
  constructor(public product: string, public author: string, public stars: i32,
              public text: string) {}
}

const REVIEWS: Review[] = [
  new Review("kettle", "Mira", 5, "Boils a litre in four minutes on gas."),
  new Review("kettle", "Tomasz", 4, "The whistle is loud; the handle stays cool."),
  new Review("teapot", "Aiko", 5, "Keeps the second steep hot for half an hour."),
  new Review("mug", "Sam", 4, "Heavy in the hand, fine in the dishwasher."),
  new Review("mug", "Lee", 5, "Holds exactly the \"350 ml\" it promises."),
  new Review("mug", "Noor", 3, "The glaze chipped after a month."),
];

const PREFIX = "/api/reviews";
const MAX_ID = 32;   // the shop's ids: 1 to 32 of [a-z0-9_-] (shop.h)

function jsonString(s: string): string {
  let out = "\"";
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c) out += "\\" + String.fromCharCode(c);
    else if (c < 0x20) out += "\\u00" + (c < 0x10 ? "0" : "") + c.toString(16);
    else out += String.fromCharCode(c);
  }
  return out + "\"";
}

// The average of n ratings summing to sum, rounded to one decimal, as a
// JSON number ("4.5", "4"); null when there are none.
function average(sum: i32, n: i32): string {
  if (n == 0) return "null";
  const tenths = (sum * 20 + n) / (2 * n);   // round half up
  const frac = tenths % 10;
  return (tenths / 10).toString() + (frac ? "." + frac.toString() : "");
}

function idOk(id: string): bool {
  if (id.length == 0 || id.length > MAX_ID) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (!((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d || c == 0x5f))
      return false;
  }
  return true;
}

function send(status: i32, json: string): void {
  keel.setStatus(status);
  keel.setHeader("Content-Type", "application/json");
  respond(json);
}

function summary(): void {
  const ids: string[] = [];
  for (let i = 0; i < REVIEWS.length; i++)
    if (!ids.includes(REVIEWS[i].product)) ids.push(REVIEWS[i].product);
  let out = "{\"products\":[";
  for (let k = 0; k < ids.length; k++) {
    let n = 0, sum = 0;
    for (let i = 0; i < REVIEWS.length; i++)
      if (REVIEWS[i].product == ids[k]) { n++; sum += REVIEWS[i].stars; }
    if (k) out += ",";
    out += "{\"id\":" + jsonString(ids[k]) + ",\"count\":" + n.toString() +
           ",\"average_stars\":" + average(sum, n) + "}";
  }
  send(200, out + "]}");
}

// catalog.get answers "NNN\n" + JSON (shop.h); anything else is a failure.
function product(id: string): void {
  const r = call("catalog", "get", id);
  if (!r.ok) {
    keel.log(keel.ERROR, "catalog.get failed: " + r.text);
    fail("the catalog call failed");
    return;
  }
  const reply = r.text;
  const status = reply.length >= 4 && reply.charAt(3) == "\n" ? I32.parseInt(reply.substring(0, 3)) : 0;
  if (status < 200 || status > 599) {
    fail("catalog.get answered without a status line");
    return;
  }
  const body = reply.substring(4);
  if (status != 200) {   // 404 for an unknown product: the catalog's own answer
    send(status, body);
    return;
  }
  let list = "", n = 0, sum = 0;
  for (let i = 0; i < REVIEWS.length; i++) {
    const v = REVIEWS[i];
    if (v.product != id) continue;
    if (n++) list += ",";
    sum += v.stars;
    list += "{\"author\":" + jsonString(v.author) + ",\"stars\":" + v.stars.toString() +
            ",\"text\":" + jsonString(v.text) + "}";
  }
  keel.log(keel.INFO, "reviews of " + id + ": " + n.toString() +
           (n ? ", average " + average(sum, n) + " stars" : "") +
           " (catalog.get answered " + status.toString() + ")");
  send(200, "{\"product\":" + body + ",\"reviews\":[" + list + "],\"count\":" + n.toString() +
            ",\"average_stars\":" + average(sum, n) + "}");
}

function handle(): void {
  const method = keel.method();
  const target = keel.uri();
  if (method === null || target === null) {
    fail("reviews must be called over HTTP");
    return;
  }
  keel.setHeader("X-Written-In", "AssemblyScript");
  if (method != "GET" && method != "HEAD") {   // Keel sends HEAD to GET routes
    keel.setHeader("Allow", "GET, HEAD");
    send(405, "{\"error\":\"method not allowed\"}");
    return;
  }
  const q = target.indexOf("?");
  const path = q < 0 ? target : target.substring(0, q);   // the query does not matter
  if (path == PREFIX || path == PREFIX + "/") {
    summary();
    return;
  }
  const id = path.startsWith(PREFIX + "/") ? path.substring(PREFIX.length + 1) : "";
  if (idOk(id)) product(id);
  else send(404, "{\"error\":\"no such product\"}");
}

// The waPC entry point (docs/abi.md, "One call"): 1 answered, 0 failed.
export function __guest_call(op_len: i32, payload_len: i32): i32 {
  const req = readRequest(op_len, payload_len);
  if (req.op == "handle") handle();
  else fail("unknown operation " + jsonString(req.op));
  return failed ? 0 : 1;
}
