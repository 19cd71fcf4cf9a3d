#!/usr/bin/env node
// Pays for an x402 v2 resource with the official client (@x402/fetch + @x402/evm, exact EVM
// scheme, EIP-3009) and prints what happened as one JSON object on stdout:
//   {"status": 200, "ok": true, "body": "...", "paymentResponse": {...} | null, "paymentRequired": {...} | null}
// `paymentRequired` is the decoded PAYMENT-REQUIRED of a final 402 (its `error` says why the
// payment was refused). Exit code 0 only for a 2xx answer.
//
// Usage: X402_PAYER_KEY=0x... node script/x402-pay.mjs <url> [--method POST] [--body JSON]
//          [--network eip155:<chainId>] [--max-amount <atomic units>] [--stream]
//          [--disconnect-after N]
// --stream reads the answer as server-sent events as they arrive and adds `events` (each
// {event, data, ms: milliseconds after the request}) to the report; --disconnect-after N closes
// the connection after N `token` events (the report then has "disconnected": true).
// The key is read from the environment only. Without --network every eip155 chain is accepted;
// --max-amount (or X402_MAX_AMOUNT) refuses requirements asking for more.
// Requires `make setup-node` (the packages are devDependencies in package.json).
import { wrapFetchWithPayment, x402Client, decodePaymentResponseHeader } from "@x402/fetch";
import { decodePaymentRequiredHeader } from "@x402/core/http";
import { ExactEvmScheme } from "@x402/evm/exact/client";
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

  const client = new x402Client().register(args.network, new ExactEvmScheme(account));
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
  const fetchWithPayment = wrapFetchWithPayment(fetch, client);

  const init = { method: args.method };
  if (args.body !== undefined) {
    init.body = args.body;
    init.headers = { "content-type": "application/json" };
  }
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
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(response.ok ? 0 : 1);
}

main().catch((e) => {
  console.error(`x402-pay: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
