/**
 * Quota requests: the pending ones (the approval queue, oldest first, with Approve and Deny
 * for those who may grant them, Cancel for those who may ask), the recent decisions in words,
 * and the form that files one. Every role that reads the organization sees them; a
 * project-member sees its own project's. The lists are read again when the journal shows a
 * quota-request entry or, on a page without the journal, when the server answers a long poll.
 */
import { useRef, useState } from 'preact/hooks';
import type { QuotaRequest } from '../../api.js';
import { Empty, ErrorNotice, Loading } from '../../components/Notice.js';
import { Pager, usePaging } from '../../components/Pager.js';
import { TableScroll } from '../../components/TableScroll.js';
import { formatTime } from '../../format.js';
import { useLoad } from '../../hooks.js';
import {
  changeText,
  kindIn,
  mayAsk,
  mayGrant,
  recentRequests,
  rowIdOf,
  subjectText,
  targetsOf,
  useDecisionWait,
  type KindOf,
} from '../../requests.js';
import type { Session } from '../../session.js';
import { DecisionEditor, type Decision } from './RequestDecision.js';
import { RequestForm } from './RequestForm.js';
import { RecentRequestsTable } from './RequestHistory.js';
import type { SectionProps } from './section.js';

const queuePageSize = 50;

/**
 * `requestsVersion`: bumped by a quota-request entry in the journal. `onDecided`: the page does
 * not follow the journal; it is called when a long poll hears a request decided.
 */
export function RequestsSection(props: SectionProps & { requestsVersion: number; onDecided?: () => void }) {
  const { session, organization } = props;
  const paging = usePaging();
  const { kinds, pending, recent, reload } = useRequestLists(session, organization, props.requestsVersion, paging.cursor);
  const [actionError, setActionError] = useState<unknown>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  useDecisionWait(session.client, organization, props.onDecided ? pending.data?.items : undefined, (decided) => {
    reload();
    if (decided) props.onDecided?.();
  });
  const kindOf: KindOf = (name) => kindIn(kinds.data?.items ?? [], name);
  // The row that asked is gone (or, refused, may be): the focus goes back to the section.
  const settled = (refusal: unknown = null) => {
    setActionError(refusal);
    reload();
    heading.current?.focus();
  };
  const cancel = (request: QuotaRequest) => {
    session.client.cancelQuotaRequest(organization, request.id).then(() => settled(), settled);
  };
  return (
    <section aria-labelledby="requests-heading" class="requests">
      <h2 id="requests-heading" ref={heading} tabIndex={-1}>
        Quota requests
      </h2>
      <h3>Pending</h3>
      <ErrorNotice error={actionError ?? pending.error} />
      {pending.data === undefined ? (
        pending.loading ? <Loading what="pending requests" /> : null
      ) : pending.data.items.length === 0 ? (
        <Empty>No request is waiting for a decision.</Empty>
      ) : (
        <PendingTable
          session={session}
          organization={organization}
          items={pending.data.items}
          kindOf={kindOf}
          onDecided={settled}
          onCancel={cancel}
        />
      )}
      {/* Paged only when the queue is longer than a page. */}
      {paging.page > 1 || pending.data?.nextCursor ? (
        <Pager paging={paging} nextCursor={pending.data?.nextCursor ?? null} label="Pending requests" />
      ) : null}
      <h3>Recent decisions</h3>
      <ErrorNotice error={recent.error} />
      {recent.data === undefined ? (
        recent.loading ? <Loading what="recent requests" /> : null
      ) : (
        <RecentRequestsTable recent={recent.data} kindOf={kindOf} />
      )}
      {targetsOf(session.me).length > 0 ? (
        <RequestForm
          session={session}
          organization={organization}
          version={props.version}
          kinds={kinds.data?.items ?? []}
          pending={pending.data?.items ?? []}
          onFiled={reload}
        />
      ) : null}
    </section>
  );
}

/** The section's reads: the kinds, a page of the pending queue, the recent decisions. */
function useRequestLists(session: Session, organization: string, requestsVersion: number, cursor: string | undefined) {
  const kinds = useLoad(() => session.client.kinds(), [session]);
  const pending = useLoad(
    () => session.client.quotaRequests(organization, { state: 'pending', cursor, limit: queuePageSize }),
    [session, organization, cursor, requestsVersion],
  );
  const recent = useLoad(() => recentRequests(session.client, organization), [session, organization, requestsVersion]);
  const reload = () => {
    pending.reload();
    recent.reload();
  };
  return { kinds, pending, recent, reload };
}

function PendingTable(props: {
  session: Session;
  organization: string;
  items: QuotaRequest[];
  kindOf: KindOf;
  onDecided: (refusal?: unknown) => void;
  onCancel: (request: QuotaRequest) => void;
}) {
  // A column of buttons only for a role that may act on some request.
  const actions = targetsOf(props.session.me).length > 0;
  return (
    <TableScroll label="Pending requests table">
      <table class="requests-pending">
        <caption class="visually-hidden">Quota requests waiting for a decision, oldest first</caption>
        <thead>
          <tr>
            <th scope="col">Request</th>
            <th scope="col">Now → preferred</th>
            <th scope="col">Justification</th>
            <th scope="col">Contact</th>
            <th scope="col">Requested</th>
            <th scope="col">Expires</th>
            {actions ? (
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            ) : null}
          </tr>
        </thead>
        <tbody>
          {props.items.map((request) => (
            <PendingRow key={request.id} {...props} request={request} actions={actions} />
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

function PendingRow(props: {
  session: Session;
  organization: string;
  request: QuotaRequest;
  kindOf: KindOf;
  actions: boolean;
  onDecided: (refusal?: unknown) => void;
  onCancel: (request: QuotaRequest) => void;
}) {
  const { request, session } = props;
  const [deciding, setDeciding] = useState<Decision | null>(null);
  const buttons = useRef(new Map<Decision, HTMLButtonElement>());
  const kind = props.kindOf(request.kind);
  const subject = subjectText(request.field, kind.displayName, request.project);
  // Closing the editor gives the focus back to the button that opened it.
  const close = () => {
    const was = deciding;
    setDeciding(null);
    setTimeout(() => was && buttons.current.get(was)?.focus(), 0);
  };
  return (
    <>
      <tr id={rowIdOf(request.id)} tabIndex={-1}>
        <th scope="row">{subject}</th>
        <td>{changeText(request, kind.format)}</td>
        <td class="justification">{request.justification}</td>
        <td>{request.contact}</td>
        <td>
          {request.requestedBy}
          <div class="muted">{formatTime(request.requestedAt)}</div>
        </td>
        <td>{formatTime(request.expiresAt)}</td>
        {props.actions ? (
          <RowActions
            {...props}
            subject={subject}
            deciding={deciding}
            onDecide={setDeciding}
            buttonRef={(decision, element) => void (element && buttons.current.set(decision, element))}
          />
        ) : null}
      </tr>
      {deciding ? (
        <tr class="editor">
          <td colSpan={7}>
            <DecisionEditor
              key={deciding}
              session={session}
              organization={props.organization}
              request={request}
              subject={subject}
              format={kind.format}
              decision={deciding}
              onClose={close}
              onDecided={props.onDecided}
            />
          </td>
        </tr>
      ) : null}
    </>
  );
}

/** Approve and Deny for whoever may grant it; Cancel for whoever may ask for it. */
function RowActions(props: {
  session: Session;
  request: QuotaRequest;
  subject: string;
  deciding: Decision | null;
  onDecide: (decision: Decision) => void;
  onCancel: (request: QuotaRequest) => void;
  buttonRef: (decision: Decision, element: HTMLButtonElement | null) => void;
}) {
  const { request, subject } = props;
  const me = props.session.me;
  const button = (decision: Decision, label: string) => (
    <button
      key={decision}
      ref={(element) => props.buttonRef(decision, element)}
      type="button"
      onClick={() => props.onDecide(decision)}
      aria-label={`${label} the request for the ${subject}`}
      aria-expanded={props.deciding === decision}
    >
      {label}
    </button>
  );
  return (
    <td class="actions">
      {mayGrant(me, request.scope) ? [button('approve', 'Approve'), button('deny', 'Deny')] : null}
      {mayAsk(me, request.scope, request.project) ? (
        <button type="button" onClick={() => props.onCancel(request)} aria-label={`Cancel the request for the ${subject}`}>
          Cancel request
        </button>
      ) : null}
    </td>
  );
}
