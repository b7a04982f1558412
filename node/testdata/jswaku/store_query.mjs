// store_query.mjs <multiaddr> <contentTopic> [--page-size N] [--timeout MS]
//
// Connects to a Waku store node as a stock js-waku light node, pages
// through every message of the content topic with js-waku's store API,
// and prints one JSON line per message, in the order js-waku yields them:
//   {"hash":"<hex>","pubsubTopic":"...","contentTopic":"...","timestamp":"<ns>","payload":"<hex>","meta":"<hex>"}
// then a summary line {"summary":{"messages":N,"pages":P}}. The content
// topic's pubsub topic comes from js-waku's autosharding (cluster 1, 8
// shards). Exits non-zero on any failure.
import { messageHashStr } from "@waku/message-hash";
import { connectLight, fail, guard, hex, intOption, parseArgs, within } from "./common.mjs";

const { pos, opts } = parseArgs("store_query.mjs <multiaddr> <contentTopic> [--page-size N] [--timeout MS]", 2,
  { "page-size": "", timeout: "20000" });
const [addr, contentTopic] = pos;
const timeout = intOption(opts, "timeout");
guard(2 * timeout);

const waku = await connectLight(addr, timeout).catch((e) => fail(`connecting: ${e.message}`));
const decoder = waku.createDecoder({ contentTopic });
const query = {};
if (opts["page-size"] !== "") query.paginationLimit = intOption(opts, "page-size");

let messages = 0;
let pages = 0;
try {
  const gen = waku.store.queryGenerator([decoder], query);
  for (;;) {
    const next = await within(gen.next(), timeout, `store page ${pages + 1}`);
    if (next.done) break;
    pages++;
    const page = await within(Promise.all(next.value), timeout, `decoding page ${pages}`);
    for (const m of page) {
      if (m === undefined) fail(`page ${pages}: js-waku could not decode a message`);
      // The hash of the wire message: a DecodedMessage passed as it is
      // would be hashed with its millisecond Date timestamp.
      const hash = messageHashStr(m.pubsubTopic, m.proto);
      if (hash !== m.hashStr) fail(`@waku/message-hash gives ${hash}, js-waku's message ${m.hashStr}`);
      console.log(JSON.stringify({
        hash,
        pubsubTopic: m.pubsubTopic,
        contentTopic: m.contentTopic,
        timestamp: String(m.proto.timestamp ?? 0n),
        payload: hex(m.payload),
        meta: hex(m.meta),
      }));
      messages++;
    }
  }
} catch (e) {
  fail(`store query: ${e.message}`);
}
console.log(JSON.stringify({ summary: { messages, pages } }));
await within(waku.stop(), timeout, "stopping").catch(() => {});
process.exit(0);
