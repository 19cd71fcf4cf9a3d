#!/usr/bin/env node
// Pays for an x402 v2 resource with the official client (@x402/fetch + @x402/evm, exact EVM
// scheme, EIP-3009) and prints what happened as one JSON object on stdout:
//   {"status": 200, "ok": true, "body": "...", "paymentResponse": {...} | null, "paymentRequired": {...} | null}
// `paymentRequired` is the decoded PAYMENT-REQUIRED of a final 402 (its `error` says why the
// payment was refused). Exit code 0 only for a 2xx answer.
//
// Usage: X402_PAYER_KEY=0x... node script/x402-pay.mjs <url> [--method POST] [--body JSON]
//          [--network eip155:<chainId>] [--max-amount <atomic units>] [--stream]
//          [--disconnect-after N] [--scheme exact|batch-settlement] [--requests N]
//          [--deposit-multiplier M] [--replay-last]
// --stream reads the answer as server-sent events as they arrive and adds `events` (each
// {event, data, ms: milliseconds after the request}) to the report; --disconnect-after N closes
// the connection after N `token` events (the report then has "disconnected": true).
// --scheme batch-settlement pays through an x402 payment channel (the official
// BatchSettlementEvmScheme: one deposit of M × the price, M from --deposit-multiplier, or the
// server's extra.minDeposit when that is more; without it, the client's own policy; then one
// signed cumulative voucher per request). --requests N makes N paid requests with the same
// client (one channel) and reports {requests, ok, statuses, ms:{p50,p90,total}, first: <report of request 1>, last: <report of request N>}; --replay-last then sends
// the last paid request's PAYMENT-SIGNATURE again, verbatim, and adds `replay` (its status and
// the decoded PAYMENT-REQUIRED, whose `error` names the refusal).
// The key is read from the environment only. Without --network every eip155 chain is accepted;
// --max-amount (or X402_MAX_AMOUNT) refuses requirements asking for more.
// Requires `make setup-node` (the packages are devDependencies in package.json).
import { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } from "@x402/fetch";
import { decodePaymentRequiredHeader } from "@x402/core/http";
import { ExactEvmScheme } from "@x402/evm/exact/client";
import { BatchSettlementEvmScheme } from "@x402/evm/batch-settlement/client";
import { privateKeyToAccount } from "viem/accounts";

function usage(message) {
  if (message) console.error(`x402-pay: ${message}`);
  console.error(
    "usage: X402_PAYER_KEY=0x... node script/x402-pay.mjs <url> [--method M] [--body JSON] [--network eip155:<id>] [--max-amount N]",
  );
  process.exit(2);
}

function parseArgs(argv) {
  const args = {
    method: undefined,
    body: undefined,
    network: "eip155:*",
    maxAmount: process.env.X402_MAX_AMOUNT,
    stream: false,
    disconnectAfter: undefined,
    scheme: "exact",
    requests: 1,
    depositMultiplier: undefined,
    replayLast: false,
  };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--method") args.method = value().toUpperCase();
    else if (a === "--body") args.body = value();
    else if (a === "--network") args.network = value();
    else if (a === "--max-amount") args.maxAmount = value();
    else if (a === "--stream") args.stream = true;
    else if (a === "--disconnect-after") {
      args.stream = true;
      args.disconnectAfter = Number(value());
      if (!Number.isInteger(args.disconnectAfter) || args.disconnectAfter < 1) usage("--disconnect-after must be a positive integer");
    }
    else if (a === "--scheme") {
      args.scheme = value();
      if (args.scheme !== "exact" && args.scheme !== "batch-settlement") usage("--scheme is exact or batch-settlement");
    }
    else if (a === "--requests") {
      args.requests = Number(value());
      if (!Number.isInteger(args.requests) || args.requests < 1) usage("--requests must be a positive integer");
    }
    else if (a === "--deposit-multiplier") {
      args.depositMultiplier = Number(value());
      if (!Number.isInteger(args.depositMultiplier) || args.depositMultiplier < 3) usage("--deposit-multiplier must be an integer >= 3");
    }
    else if (a === "--replay-last") args.replayLast = true;
    else if (a === "-h" || a === "--help") usage();
    else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) usage("exactly one URL is required");
  args.url = rest[0];
  if (args.body !== undefined) {
    try {
      JSON.parse(args.body);
    } catch (e) {
      usage(`--body is not JSON: ${e.message}`);
    }
    args.method ??= "POST";
  }
  args.method ??= "GET";
  if (args.maxAmount !== undefined && !/^\d+$/.test(args.maxAmount)) usage("--max-amount must be an integer");
  return args;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const key = process.env.X402_PAYER_KEY;
  if (!key || !/^0x[0-9a-fA-F]{64}$/.test(key)) usage("X402_PAYER_KEY must hold a 0x-prefixed 32-byte private key");
  const account = privateKeyToAccount(key);

  const scheme =
    args.scheme === "exact"
      ? new ExactEvmScheme(account)
      : new BatchSettlementEvmScheme(
          account,
          args.depositMultiplier === undefined
            ? undefined
            : {
                // A deposit of M prices, or what the server asks (extra.minDeposit) when that
                // is more: the client's own policy would take the server's minimum instead.
                depositStrategy: (ctx) => {
                  const want = BigInt(ctx.requestAmount) * BigInt(args.depositMultiplier);
                  const least = BigInt(ctx.depositAmount);
                  return want > least ? want : least;
                },
              },
        );
  const client = new x402Client().register(args.network, scheme);
  // ATN is not one of the packages' default (USD) assets: allow any token, and enforce our own
  // atomic cap instead of the default "$1" one.
  client.setSpendControls({ allowedAssets: true, maxAmountPerPayment: false });
  if (args.maxAmount !== undefined) {
    const cap = BigInt(args.maxAmount);
    client.onBeforePaymentCreation(async ({ selectedRequirements }) => {
      if (BigInt(selectedRequirements.amount) > cap) {
        return { abort: true, reason: `amount ${selectedRequirements.amount} is above --max-amount ${cap}` };
      }
    });
  }
  // Remembers the last PAYMENT-SIGNATURE sent (for --replay-last).
  let lastSignature;
  const recordingFetch = (input, init) => {
    const request = new Request(input, init);
    const header = request.headers.get("PAYMENT-SIGNATURE");
    if (header) lastSignature = header;
    return fetch(request);
  };
  const fetchWithPayment = wrapFetchWithPayment(recordingFetch, client);
  if (args.requests === 1 && !args.replayLast) {
    const result = await payOnce(args, account, fetchWithPayment);
    process.stdout.write(JSON.stringify(result) + "\n");
    process.exit(result.ok ? 0 : 1);
  }
  const times = [];
  const statuses = {};
  let first;
  let last;
  let ok = 0;
  const began = performance.now();
  for (let i = 0; i < args.requests; i++) {
    const t = performance.now();
    const result = await payOnce(args, account, fetchWithPayment);
    times.push(performance.now() - t);
    statuses[result.status] = (statuses[result.status] ?? 0) + 1;
    if (result.ok) ok++;
    if (i === 0) first = result;
    last = result;
    if (!result.ok) break;
  }
  const total = performance.now() - began;
  times.sort((a, b) => a - b);
  const pct = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
  const summary = { requests: times.length, ok, statuses, ms: { p50: pct(0.5), p90: pct(0.9), total }, first, last };
  if (args.replayLast && lastSignature) {
    const init = requestInit(args);
    init.headers = { ...(init.headers ?? {}), "PAYMENT-SIGNATURE": lastSignature };
    const response = await fetch(args.url, init);
    await response.text();
    const required = response.headers.get("PAYMENT-REQUIRED");
    summary.replay = {
      status: response.status,
      paymentRequired: required ? decodePaymentRequiredHeader(required) : null,
    };
  }
  process.stdout.write(JSON.stringify(summary) + "\n");
  process.exit(ok === args.requests ? 0 : 1);
}

function requestInit(args) {
  const init = { method: args.method };
  if (args.body !== undefined) {
    init.body = args.body;
    init.headers = { "content-type": "application/json" };
  }
  return init;
}

async function payOnce(args, account, fetchWithPayment) {
  const init = requestInit(args);
  const started = performance.now();
  const response = await fetchWithPayment(args.url, init);
  let body = "";
  let events;
  let disconnected = false;
  if (args.stream && response.ok && response.body) {
    events = [];
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let tokens = 0;
    read: for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (data.length === 0) continue;
        events.push({ event, data: JSON.parse(data.join("\n")), ms: performance.now() - started });
        if (event === "token" && ++tokens === args.disconnectAfter) {
          disconnected = true;
          await reader.cancel();
          break read;
        }
      }
    }
  } else {
    body = await response.text();
  }
  const paymentResponseHeader = response.headers.get("PAYMENT-RESPONSE");
  const paymentRequiredHeader = response.status === 402 ? response.headers.get("PAYMENT-REQUIRED") : null;
  const result = {
    status: response.status,
    ok: response.ok,
    payer: account.address,
    body,
    paymentResponse: paymentResponseHeader ? decodePaymentResponseHeader(paymentResponseHeader) : null,
    paymentRequired: paymentRequiredHeader ? decodePaymentRequiredHeader(paymentRequiredHeader) : null,
  };
  if (events !== undefined) {
    result.events = events;
    result.disconnected = disconnected;
  }
  return result;
}

main().catch((e) => {
  console.error(`x402-pay: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
