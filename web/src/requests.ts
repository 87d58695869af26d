/**
 * Quota requests as the organization page shows them: who may ask and who may grant in each
 * scope (the server's rules, so the page offers only what it would accept), each request's
 * subject, change and outcome in words (a state is said, never only coloured), and the reads:
 * the recent decisions, and a long poll for a page that does not follow the journal.
 */
import { useEffect } from 'preact/hooks';
import { ApiError, type Client, type QuotaRequest, type ResourceKind, type WhoAmI } from './api.js';
import { formatQuantity, formatTime, type KindFormat } from './format.js';

export type RequestScope = QuotaRequest['scope'];
/** What a request changes: the organization's quota, or a project's cap or guarantee. */
export type RequestTarget = QuotaRequest['field'];

/** Org-admins ask for their organization's quota, and anyone who may ask for a project's. */
export function mayAsk(me: WhoAmI, scope: RequestScope, project: string | null): boolean {
  if (me.role === 'service-admin' || me.role === 'org-admin') return true;
  return me.role === 'project-member' && scope === 'project' && project === me.project;
}

/** Service-admins grant an organization's quota; they and org-admins a project's cap or guarantee. */
export const mayGrant = (me: WhoAmI, scope: RequestScope) =>
  me.role === 'service-admin' || (scope === 'project' && me.role === 'org-admin');

/** The targets a role may ask for, in the order the form offers them. */
export const targetsOf = (me: WhoAmI): RequestTarget[] =>
  me.role === 'project-member' ? ['cap', 'guaranteed'] : mayAsk(me, 'organization', null) ? ['quota', 'cap', 'guaranteed'] : [];

const targetWords: Record<RequestTarget, string> = { quota: 'quota', cap: 'cap', guaranteed: 'guarantee' };

/** "GPUs cap of web", "GPUs quota of the organization". */
export function subjectText(target: RequestTarget, displayName: string, project: string | null): string {
  return `${displayName} ${targetWords[target]} of ${project ?? 'the organization'}`;
}

/** A value as the target reads it: no cap rather than unlimited. */
export function valueText(value: number | null, target: RequestTarget, format: KindFormat): string {
  return value === null && target === 'cap' ? 'no cap' : formatQuantity(value, format);
}

export const changeText = (request: QuotaRequest, format: KindFormat) =>
  `${valueText(request.current, request.field, format)} → ${valueText(request.preferred, request.field, format)}`;

/** How a request ended, or until when it waits: the state in a word or two, then the rest. */
export function outcomeOf(request: QuotaRequest, format: KindFormat): { state: string; detail: string } {
  const at = formatTime(request.decidedAt);
  const by = request.decidedBy ?? 'nobody';
  const value = (quantity: number | null) => valueText(quantity, request.field, format);
  switch (request.state) {
    case 'pending':
      return { state: 'pending', detail: `until ${formatTime(request.expiresAt)}` };
    case 'approved': {
      if (request.decidedBy === 'policy') return { state: 'approved by policy', detail: `for ${value(request.granted)}, ${at}` };
      const asked = request.granted === request.preferred ? '' : ` (asked ${value(request.preferred)})`;
      // A decrease by someone who may make it is applied as it is filed.
      const state = request.decidedAt === request.requestedAt ? 'approved at once' : 'approved';
      return { state, detail: `for ${value(request.granted)}${asked} by ${by}, ${at}` };
    }
    case 'denied':
      return { state: 'denied', detail: `by ${by}, ${at}, because: ${request.reason ?? '(no reason given)'}` };
    case 'cancelled':
      return { state: 'cancelled', detail: `by ${by}, ${at}` };
    case 'expired':
      return { state: 'expired', detail: `unanswered, ${at}` };
  }
}

/** The justification and the denial reason are one paragraph: the API refuses control characters. */
export const oneParagraph = (text: string) => text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();

/** A kind's name and format by its id, for the tables (the id itself until the kinds are read). */
export type KindOf = (name: string) => { displayName: string; format: KindFormat };

export function kindIn(kinds: readonly ResourceKind[], name: string): ReturnType<KindOf> {
  const kind = kinds.find((candidate) => candidate.name === name);
  return { displayName: kind?.displayName ?? name, format: kind?.format ?? 'decimal' };
}

/** Where a request's row is, to move the focus to it from the form's answer. */
export const rowIdOf = (id: string) => `request-${id}`;

export function focusRequest(id: string): void {
  const row = document.getElementById(rowIdOf(id));
  row?.scrollIntoView({ block: 'center' });
  row?.focus();
}

/** How many decided requests the history shows, and how much of the list it reads to find them. */
const historyLength = 20;
/** The list's limit takes three digits (999), below the API's usual page size bound of 1000. */
const historyPageSize = 500;
const historyPagesMax = 10;

export interface RecentRequests {
  /** Newest decision first. */
  items: QuotaRequest[];
  /** False: the organization has more requests than were read, and newer ones may be missing. */
  complete: boolean;
}

/**
 * The latest decided requests. The API lists oldest first, with no order to ask for: the
 * newest are at the end, so the list is read up to a bound and its tail kept.
 */
export async function recentRequests(client: Client, organization: string): Promise<RecentRequests> {
  const kept: QuotaRequest[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < historyPagesMax; page += 1) {
    const answer = await client.quotaRequests(organization, { cursor, limit: historyPageSize });
    kept.push(...answer.items.filter((request) => request.state !== 'pending'));
    kept.splice(0, Math.max(0, kept.length - historyLength));
    if (answer.nextCursor === null) return { items: newestDecisionFirst(kept), complete: true };
    cursor = answer.nextCursor;
  }
  return { items: newestDecisionFirst(kept), complete: false };
}

const newestDecisionFirst = (items: QuotaRequest[]) =>
  [...items].sort((a, b) => Date.parse(b.decidedAt ?? b.requestedAt) - Date.parse(a.decidedAt ?? a.requestedAt));

/** How long one long poll waits on the server, and the pause after a failed one. */
const waitSeconds = 30;
const retryMs = 5000;

/**
 * For a page that does not follow the journal (a project-member may not read it): waits on
 * the server for the oldest pending request to be decided (a long poll), then calls `onAnswer`
 * with whether it was, which reads the lists again and so starts the next wait. The others
 * are seen at the latest when a wait ends unanswered, every 30 s.
 */
export function useDecisionWait(
  client: Client,
  organization: string,
  pending: readonly QuotaRequest[] | undefined,
  onAnswer: (decided: boolean) => void,
): void {
  useEffect(() => {
    const oldest = pending?.[0];
    if (oldest === undefined) return;
    const controller = new AbortController();
    const wait = async () => {
      while (!controller.signal.aborted) {
        try {
          const answer = await client.quotaRequest(organization, oldest.id, waitSeconds, controller.signal);
          if (!controller.signal.aborted) onAnswer(answer.state !== 'pending');
        } catch (error) {
          // Refused (gone, say): the lists are read again instead.
          if (error instanceof ApiError && error.status >= 400 && error.status < 500 && !controller.signal.aborted) onAnswer(true);
        }
        // A list read again ends this wait and starts the next; one that failed to read (or a
        // wait that failed) tries again after a pause, rather than stopping or spinning.
        await new Promise((resolve) => setTimeout(resolve, retryMs));
      }
    };
    void wait();
    return () => controller.abort();
    // Every read of the list starts a new wait (a new array), so one is always running.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, organization, pending]);
}
