/**
 * One delivery: a signed POST (Standard Webhooks: `webhook-id`, `webhook-timestamp`,
 * `webhook-signature`), to the address the target was checked at, bounded in time and in what
 * is read back, redirects not followed. Any answer but 2xx is a failure, retried later.
 */
import http from 'node:http';
import https from 'node:https';
import { Webhook } from 'standardwebhooks';
import { checkTarget, connectLookup, TargetRefused, type AllowList } from './address.js';
import type { WebhookEvent } from './events.js';

export interface SendOptions {
  allow: AllowList;
  /** The whole delivery, connecting included. */
  timeoutMs: number;
}

/** What a receiver may send back before it is cut off (the answer's body is not used). */
const answerBytesMax = 64 * 1024;

export class DeliveryFailed extends Error {
  override name = 'DeliveryFailed';
}

const bodyOf = (event: WebhookEvent) => JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });

export async function sendEvent(url: string, secret: string, event: WebhookEvent, options: SendOptions): Promise<void> {
  // One deadline for the whole delivery: resolving the name, connecting, sending, the answer.
  const deadline = performance.now() + options.timeoutMs;
  let target: Awaited<ReturnType<typeof checkTarget>>;
  try {
    // Checked at every delivery, not only when subscribed: a name's addresses may change.
    target = await checkTarget(url, options.allow, undefined, options.timeoutMs);
  } catch (error) {
    if (error instanceof TargetRefused) throw new DeliveryFailed(error.message);
    throw error;
  }
  const body = bodyOf(event);
  const now = new Date();
  const headers = {
    'content-type': 'application/json',
    'user-agent': 'allot-webhooks',
    'webhook-id': event.id,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(event.id, now, body),
  };
  const left = Math.max(1, Math.round(deadline - performance.now()));
  const status = await post(target.url, body, headers, connectLookup(target.address, target.family), left, options.timeoutMs);
  if (status < 200 || status > 299) {
    throw new DeliveryFailed(status >= 300 && status < 400 ? `HTTP ${status} (redirects are not followed)` : `HTTP ${status}`);
  }
}

function post(
  url: URL,
  body: string,
  headers: Record<string, string>,
  lookup: ReturnType<typeof connectLookup>,
  leftMs: number,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? https.request : http.request;
    const request = send(url, { method: 'POST', headers, lookup, agent: false }, (response) => {
      let read = 0;
      response.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > answerBytesMax) response.destroy(); // Enough: the status is what counts.
      });
      const done = () => {
        clearTimeout(timer);
        resolve(response.statusCode ?? 0);
      };
      response.on('close', done);
      response.on('error', done);
    });
    // Bounds the whole delivery, a slowly dripped answer included.
    const timer = setTimeout(() => request.destroy(new DeliveryFailed(`no answer within ${timeoutMs} ms`)), leftMs);
    request.on('error', (error) => {
      clearTimeout(timer);
      reject(error instanceof DeliveryFailed ? error : new DeliveryFailed(error.message));
    });
    request.end(body);
  });
}
