// relay_publish.mjs <multiaddr> <contentTopic> <n> [--timeout MS]
//
// Joins Waku Relay as js-waku does (@waku/relay's GossipSub under a
// @waku/sdk node: cluster 1, 8 shards, the content topic's autosharded
// pubsub topic), connects to the node at multiaddr, waits until the node
// is in its mesh of the topic, and publishes n messages with js-waku's
// relay. Prints
// one JSON line per message,
//   {"hash":"<hex>","pubsubTopic":"...","timestamp":"<ns>","payload":"<hex>","recipients":K}
// then {"summary":{"published":N}}, and stays connected until its stdin
// closes (run it with </dev/null to leave at once, at the risk of losing
// the last messages). Exits non-zero on any failure.
import { wakuGossipSub, wakuRelay } from "@waku/relay";
import { messageHashStr } from "@waku/message-hash";
import { createLibp2pAndUpdateOptions, DefaultNetworkConfig, utils, WakuNode } from "@waku/sdk";
import { fail, guard, hex, intOption, libp2pOptions, parseArgs, within } from "./common.mjs";

const { pos, opts } = parseArgs("relay_publish.mjs <multiaddr> <contentTopic> <n> [--timeout MS]", 3,
  { timeout: "20000" });
const [addr, contentTopic] = pos;
const n = intOption({ n: pos[2] }, "n");
const timeout = intOption(opts, "timeout");
guard(2 * timeout);

// @waku/sdk has no relay node of its own any more: this is what its
// createRelayNode did, a light node's libp2p with GossipSub as pubsub and
// the relay over it, with no store, filter or light push.
const { pubsubTopic } = utils.createRoutingInfo(DefaultNetworkConfig, { contentTopic });
const options = { libp2p: { ...libp2pOptions, services: { pubsub: wakuGossipSub() } } };
let waku;
try {
  const libp2p = await within(createLibp2pAndUpdateOptions(options), timeout, "starting libp2p");
  const relay = wakuRelay([pubsubTopic])(libp2p);
  waku = new WakuNode(options, libp2p, {}, relay);
  await within(waku.start(), timeout, "starting the relay node");
  await within(waku.dial(addr), timeout, `dialing ${addr}`);
} catch (e) {
  fail(`connecting: ${e.message}`);
}
const gossip = waku.relay.gossipSub;
const remote = addr.split("/p2p/").pop();

// Wait as js-waku waits for a relay peer: until the node is in the
// topic's mesh. Its subscription alone is not enough: a peer whose
// subscription has come in may have no outbound stream yet, and GossipSub
// then publishes to no one.
await within(new Promise((resolve) => {
  const check = () => {
    if (gossip.getMeshPeers(pubsubTopic).includes(remote)) return resolve();
    setTimeout(check, 20);
  };
  check();
}), timeout, `${remote} joining the mesh of ${pubsubTopic}`).catch((e) => fail(e.message));

const encoder = waku.createEncoder({ contentTopic });
if (encoder.pubsubTopic !== pubsubTopic) fail(`encoder on ${encoder.pubsubTopic}, relay on ${pubsubTopic}`);
const runID = hex(crypto.getRandomValues(new Uint8Array(4)));
for (let i = 0; i < n; i++) {
  // The timestamp is set here, as send would, so that the hash printed is
  // the hash of what is sent.
  const message = { payload: new TextEncoder().encode(`storesync ${runID} ${i}`), timestamp: new Date() };
  const proto = await encoder.toProtoObj(message);
  let res;
  try {
    res = await within(waku.relay.send(encoder, message), timeout, `publishing message ${i}`);
  } catch (e) {
    fail(`publishing message ${i}: ${e.message}`);
  }
  if (res.failures.length > 0) fail(`publishing message ${i}: ${JSON.stringify(res.failures)}`);
  if (res.successes.length === 0) fail(`publishing message ${i}: no peer took it`);
  console.log(JSON.stringify({
    hash: messageHashStr(pubsubTopic, proto),
    pubsubTopic,
    timestamp: String(proto.timestamp),
    payload: hex(proto.payload),
    recipients: res.successes.length,
  }));
}
console.log(JSON.stringify({ summary: { published: n } }));
// GossipSub sends in the background, and stopping drops what it has not
// sent yet: stay until the caller, having seen the messages arrive,
// closes stdin.
await within(new Promise((resolve) => {
  process.stdin.on("end", resolve).on("error", resolve).on("close", resolve).resume();
}), timeout, "stdin to close").catch((e) => fail(e.message));
await within(waku.stop(), timeout, "stopping").catch((e) => fail(e.message));
process.exit(0);
