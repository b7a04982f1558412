// js-waku asks for Node.js 22 and uses Promise.withResolvers, which
// Node.js 20 lacks. Load with `node --import ./polyfill.mjs`.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = function withResolvers() {
    let resolve, reject;
    const promise = new this((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}
