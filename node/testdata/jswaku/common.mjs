// Shared by the scripts: argument parsing, bounded waits, failure exits,
// and the js-waku light node they start.
import { createLightNode, Protocols } from "@waku/sdk";

// fail prints a reason to stderr and exits non-zero.
export function fail(reason) {
  console.error(`jswaku: ${reason}`);
  process.exit(1);
}

// parseArgs splits argv into positional arguments and --name value options;
// names not in defaults are refused.
export function parseArgs(usage, nPositional, defaults) {
  const pos = [];
  const opts = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      pos.push(a);
      continue;
    }
    const name = a.slice(2);
    if (!(name in defaults) || i + 1 >= argv.length) fail(`bad option ${a}\nusage: ${usage}`);
    opts[name] = argv[++i];
  }
  if (pos.length !== nPositional) fail(`usage: ${usage}`);
  return { pos, opts };
}

// intOption reads a positive integer option.
export function intOption(opts, name) {
  const n = Number(opts[name]);
  if (!Number.isInteger(n) || n < 1) fail(`--${name} must be a positive integer, got ${opts[name]}`);
  return n;
}

// hex returns the bytes as lower-case hex, "" for none.
export function hex(bytes) {
  return Buffer.from(bytes ?? []).toString("hex");
}

// within resolves as p does, or rejects after ms with a message naming what.
export async function within(p, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// guard bounds the whole run: whatever hangs, the process ends by itself.
export function guard(ms) {
  setTimeout(() => fail(`the run took more than ${ms} ms`), ms).unref();
  process.on("unhandledRejection", (e) => fail(`unhandled rejection: ${e?.stack ?? e}`));
}

// libp2pOptions are js-waku's defaults but for two: filterMultiaddrs
// lets it dial a loopback ws address (the default keeps wss only), and
// hideWebSocketInfo keeps its banner off stdout, which carries results.
export const libp2pOptions = { filterMultiaddrs: false, hideWebSocketInfo: true };

// connectLight starts a js-waku light node with its stock settings but
// libp2pOptions, dials addr and waits for it as a store peer.
export async function connectLight(addr, ms) {
  const waku = await within(createLightNode({ libp2p: { ...libp2pOptions } }), ms, "starting the light node");
  await within(waku.dial(addr), ms, `dialing ${addr}`);
  await waku.waitForPeers([Protocols.Store], ms);
  return waku;
}
