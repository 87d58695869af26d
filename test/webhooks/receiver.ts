/**
 * A real webhook receiver for the tests: an HTTP server on 127.0.0.1 that verifies each
 * delivery with the Standard Webhooks library's own verifier (as a receiver would, with stock
 * code), records it, and answers with the status the test sets. It can go down and come back
 * on the same port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Ajv, type ValidateFunction } from 'ajv';
import { Webhook } from 'standardwebhooks';
import { webhookEvents } from '../../src/schemas/index.js';

// Every body is checked against the OpenAPI document's `webhooks` (what receivers are told).
const ajv = new Ajv({ strict: false, formats: { 'date-time': /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/ } });
const validators = new Map<string, ValidateFunction>(Object.entries(webhookEvents).map(([type, schema]) => [type, ajv.compile(schema)]));

export interface Received {
  id: string;
  type: string;
  timestamp: string;
  data: any;
}

export class Receiver {
  /** Every verified delivery, resends included, in arrival order. */
  readonly received: Received[] = [];
  /** Deliveries whose signature did not verify, or whose body is not as documented (must stay empty). */
  readonly forged: string[] = [];
  status = 204;
  /** Held before answering, to keep deliveries in flight. */
  delayMs = 0;
  secret = '';
  private server: http.Server | undefined;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** Each event once, by webhook-id (what a receiver deduplicating on it keeps). */
  get unique(): Received[] {
    const seen = new Set<string>();
    return this.received.filter((event) => !seen.has(event.id) && seen.add(event.id));
  }

  async up(): Promise<void> {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        try {
          const payload = new Webhook(this.secret).verify(body, request.headers as Record<string, string>) as Omit<Received, 'id'>;
          const valid = validators.get(payload.type);
          if (!valid?.(JSON.parse(body))) throw new Error(`not as documented: ${ajv.errorsText(valid?.errors)}`);
          if (this.status < 300) this.received.push({ id: String(request.headers['webhook-id']), ...payload });
        } catch (error) {
          this.forged.push(`${String(error)}: ${body.slice(0, 200)}`);
        }
        setTimeout(() => response.writeHead(this.status).end(), this.delayMs);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}
