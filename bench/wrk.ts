/**
 * HTTP load from wrk, a C load generator: on two cores a Node client would take the CPU the
 * server needs, and measure itself. A Lua script makes each request (a unique resource per
 * allocation; a hold, then its confirm; 1,000 entries a batch) and counts the decisions the
 * answers report applied; `done` prints one JSON line this module reads.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { LoadResult } from './load.js';

const run = promisify(execFile);

/** What one wrk request does. */
export type WrkShape =
  | { kind: 'allocate'; organizations: string[] }
  | { kind: 'holds'; organization: string }
  | { kind: 'batch'; organization: string; operations: number };

export async function hasWrk(): Promise<boolean> {
  try {
    await run('wrk', ['--version']);
    return true;
  } catch (error) {
    // wrk prints its usage and exits 1 on --version: installed.
    return (error as { code?: unknown }).code === 1;
  }
}

let dir: string | undefined;

export async function runWrk(options: {
  url: string;
  token: string;
  shape: WrkShape;
  concurrency: number;
  durationMs: number;
  /** Keeps resource ids of different runs apart. */
  prefix: string;
}): Promise<LoadResult> {
  dir ??= mkdtempSync(join(tmpdir(), 'allot-wrk-'));
  const script = join(dir, `${options.prefix}.lua`);
  writeFileSync(script, luaOf(options.shape, options.token));
  const threads = Math.min(2, options.concurrency);
  const { stdout } = await run(
    'wrk',
    ['-t', String(threads), '-c', String(options.concurrency), '-d', `${Math.round(options.durationMs / 1000)}s`, '--timeout', '30s', '-s', script, options.url, '--', options.prefix],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const line = stdout.split('\n').find((l) => l.startsWith('{"wrk":'));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}`);
  const result = JSON.parse(line).wrk as { seconds: number; requests: number; decisions: number; failures: number; firstFailure: string; p50Us: number; p99Us: number };
  return {
    operations: result.requests,
    failures: result.failures,
    firstFailure: result.firstFailure || undefined,
    throughput: result.decisions / result.seconds,
    p50Ms: Number((result.p50Us / 1000).toFixed(2)),
    p99Ms: Number((result.p99Us / 1000).toFixed(2)),
  };
}

const quoted = (text: string) => JSON.stringify(text);

/** The script: shared counting, then the shape's request and response. */
function luaOf(shape: WrkShape, token: string): string {
  const common = `
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end
local prefix, counter = "", 0
decisions, failures, first_failure = 0, 0, ""
local headers = { ["authorization"] = "Bearer " .. ${quoted(token)}, ["content-type"] = "application/json" }
function init(args)
  prefix = args[1] .. "-" .. tid
  math.randomseed(os.time() + tid)
end
local function resource()
  counter = counter + 1
  return '{"resource":{"kind":"vm","id":"' .. prefix .. '-' .. counter .. '"},"allocations":[{"kind":"gpus","committed":1}]}'
end
local function failed(status, body)
  failures = failures + 1
  if first_failure == "" then first_failure = status .. " " .. string.sub(body, 1, 300) end
end
function done(summary, latency, requests)
  local d, f, first = 0, 0, ""
  for _, t in ipairs(threads) do
    d = d + t:get("decisions")
    f = f + t:get("failures")
    if first == "" then first = t:get("first_failure") end
  end
  -- Kept to characters a JSON string takes as they are.
  first = string.gsub((string.gsub(first, '[^%w %p]', ' ')), '["\\\\]', "'")
  io.write(string.format('{"wrk":{"seconds":%f,"requests":%d,"decisions":%d,"failures":%d,"firstFailure":"%s","p50Us":%d,"p99Us":%d}}\\n',
    summary.duration / 1e6, summary.requests, d, f + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    first, latency:percentile(50), latency:percentile(99)))
end
`;
  switch (shape.kind) {
    case 'allocate': {
      const organizations = `{ ${shape.organizations.map(quoted).join(', ')} }`;
      return `${common}
local organizations = ${organizations}
function request()
  local organization = organizations[math.random(1, #organizations)]
  return wrk.format("POST", "/v1/organizations/" .. organization .. "/projects/p/allocations", headers, resource())
end
function response(status, headers, body)
  if status == 201 then decisions = decisions + 1 else failed(status, body) end
end
`;
    }
    case 'holds':
      // A connection's next request confirms the hold its last answer made; a pair is one
      // decision of this scenario (its ceiling does the same two transactions).
      return `${common}
local base = "/v1/organizations/${shape.organization}/projects/p/holds"
local held = {}
function request()
  local id = table.remove(held)
  if id then return wrk.format("POST", base .. "/" .. id .. "/confirm", headers, "{}") end
  local body = string.sub(resource(), 1, -2) .. ',"ttlSeconds":60}'
  return wrk.format("POST", base, headers, body)
end
function response(status, headers, body)
  if status == 201 then
    table.insert(held, string.match(body, '"id":"([^"]+)"'))
  elseif status == 200 then
    decisions = decisions + 1
  else
    failed(status, body)
  end
end
`;
    case 'batch':
      return `${common}
function request()
  local entries = {}
  for i = 1, ${shape.operations} do
    entries[i] = '{"op":"allocation.create","project":"p","body":' .. resource() .. '}'
  end
  local body = '{"mode":"independent","operations":[' .. table.concat(entries, ",") .. ']}'
  return wrk.format("POST", "/v1/organizations/${shape.organization}/batch", headers, body)
end
function response(status, headers, body)
  if status ~= 200 then return failed(status, body) end
  local applied = select(2, string.gsub(body, '"status":201', ""))
  decisions = decisions + applied
  if applied < ${shape.operations} then failed(status, "entries refused: " .. body) end
end
`;
  }
}
