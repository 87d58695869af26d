/**
 * Files a quota request and says how it went: pending (with a way to its row in the list),
 * approved at once (a decrease its requester may make) or approved by policy. One request per
 * kind may be open for the organization and for each project: another is refused, naming the
 * open one. A cut deeper than the kind's safety check (or below usage) asks first, and only an
 * explicit confirm repeats it with force.
 */
import { useRef, useState } from 'preact/hooks';
import { ApiError, type QuotaRequest, type QuotaRequestInput, type ResourceKind } from '../../api.js';
import { ConfirmDialog } from '../../components/ConfirmDialog.js';
import { ErrorNotice } from '../../components/Notice.js';
import { forcibleCodes, useForcibleSave, type ForcibleSave } from '../../forcible.js';
import { parseQuantityField } from '../../format.js';
import { useLoad } from '../../hooks.js';
import { focusRequest, oneParagraph, rowIdOf, subjectText, targetsOf, valueText } from '../../requests.js';
import type { Session } from '../../session.js';
import { chosenOf, DraftFields, emptyDraft, idPattern, type Chosen, type Draft } from './RequestFields.js';

/** A request's own safety check asks to confirm, as do the quota rules' forcible refusals. */
const requestForcibleCodes: ReadonlySet<string> = new Set(['decrease-needs-force', ...forcibleCodes]);

export function RequestForm(props: {
  session: Session;
  organization: string;
  /** The page's numbers' version: the value in force is read again with them. */
  version: number;
  kinds: ResourceKind[];
  /** The pending requests listed: an answer links to one of them only if it is there. */
  pending: readonly QuotaRequest[];
  onFiled: () => void;
}) {
  const { session, organization } = props;
  const targets = targetsOf(session.me);
  const [draft, setDraft] = useState<Draft>(emptyDraft);
  const [filed, setFiled] = useState<QuotaRequest | null>(null);
  const chosen = chosenOf(draft, props.kinds, targets, session.me.project);
  const subject = subjectText(chosen.target, chosen.displayName, chosen.project || null);
  const preferred = parseQuantityField(draft.preferred);
  const current = useCurrentValue(session, organization, chosen, props.version);
  const saving = useForcibleSave(
    async (force) => {
      if (!preferred.ok || preferred.value === null || chosen.kind === '') return;
      setFiled(null);
      const answer = await session.client.createQuotaRequest(organization, bodyOf(chosen, preferred.value, draft), force);
      setFiled(answer.body);
      setDraft((now) => ({ ...now, preferred: '', justification: '' }));
    },
    props.onFiled,
    requestForcibleCodes,
  );
  return (
    <>
      <h3 id="request-form-heading">Request a change</h3>
      <p class="muted">
        {subject[0]!.toUpperCase()}
        {subject.slice(1)}: {current === undefined ? '…' : `now ${valueText(current, chosen.target, chosen.format)}`}.
      </p>
      <form
        class="toolbar"
        aria-labelledby="request-form-heading"
        onSubmit={(event) => {
          event.preventDefault();
          void saving.save();
        }}
      >
        <DraftFields
          session={session}
          organization={organization}
          draft={draft}
          chosen={chosen}
          targets={targets}
          kinds={props.kinds}
          onChange={(change) => setDraft((now) => ({ ...now, ...change }))}
        />
        <button type="submit" disabled={saving.saving || !preferred.ok || chosen.kind === ''}>
          Request
        </button>
      </form>
      <Answer filed={filed} error={saving.error} kinds={props.kinds} pending={props.pending} />
      <ForceDialog saving={saving} subject={subject} />
    </>
  );
}

function bodyOf(chosen: Chosen, preferred: number | string, draft: Draft): QuotaRequestInput {
  const { kind, target } = chosen;
  const said = { preferred, justification: oneParagraph(draft.justification), contact: draft.contact.trim() };
  if (target === 'quota') return { kind, scope: 'organization', ...said };
  return { kind, scope: 'project', project: chosen.project, field: target, ...said };
}

/** The last answer: the request as filed, or why it was not. */
function Answer(props: { filed: QuotaRequest | null; error: unknown; kinds: ResourceKind[]; pending: readonly QuotaRequest[] }) {
  const { filed, error } = props;
  const listed = (id: string | null) => id !== null && props.pending.some((request) => request.id === id);
  // The request filed, once listed as pending: gone from the list, it has been decided since.
  const seen = useRef<string | null>(null);
  if (filed && listed(filed.id)) seen.current = filed.id;
  const kind = props.kinds.find((candidate) => candidate.name === filed?.kind);
  return (
    <>
      {filed ? (
        <FiledNotice
          request={filed}
          subject={subjectText(filed.field, kind?.displayName ?? filed.kind, filed.project)}
          format={kind?.format ?? 'decimal'}
          listed={listed(filed.id)}
          decidedSince={seen.current === filed.id && !listed(filed.id)}
        />
      ) : null}
      {error instanceof ApiError && error.code === 'quota-request-open' ? (
        <OpenNotice error={error} listed={listed(error.openRequest)} />
      ) : (
        <ErrorNotice error={error} />
      )}
    </>
  );
}

function ForceDialog({ saving, subject }: { saving: ForcibleSave; subject: string }) {
  return (
    <ConfirmDialog
      open={saving.refusal !== null}
      title={confirmTitle(saving.refusal?.code, subject)}
      confirmLabel="Request it with force"
      onConfirm={() => void saving.confirm()}
      onCancel={saving.cancel}
    >
      <p>{saving.refusal?.message}</p>
      <p>
        With force the change is also made if it leaves the value below what is in use: nothing already allocated is taken away, but
        new allocations are refused until the numbers fit again.
      </p>
    </ConfirmDialog>
  );
}

const confirmTitle = (code: string | undefined, subject: string) =>
  code === 'guarantee-unavailable'
    ? 'Guarantee more than is free?'
    : code === 'quota-below-usage'
      ? `Cut the ${subject} below its usage?`
      : `Cut the ${subject} this deep?`;

/** The value in force of what is chosen; undefined while unknown (or not readable). */
function useCurrentValue(session: Session, organization: string, chosen: Chosen, version: number): number | null | undefined {
  const { kind, target, project } = chosen;
  const key = `${kind}/${target}/${project}`;
  const loaded = useLoad(async () => {
    if (kind === '' || (target !== 'quota' && !idPattern.test(project))) return { key, value: undefined };
    if (target === 'quota') {
      return { key, value: (await session.client.quotas(organization)).body.quotas.find((quota) => quota.kind === kind)?.quantity };
    }
    const row = (await session.client.projectQuotas(organization, project)).body.quotas.find((quota) => quota.kind === kind);
    return { key, value: row === undefined ? undefined : target === 'cap' ? row.cap : row.guaranteed };
  }, [session, organization, key, version]);
  // Another choice's value, still shown while this one is read, would mislead.
  return loaded.data?.key === key ? loaded.data.value : undefined;
}

const pendingWords = 'It is pending until someone who may grant it decides.';

function FiledNotice(props: { request: QuotaRequest; subject: string; format: Chosen['format']; listed: boolean; decidedSince: boolean }) {
  const { request } = props;
  const value = (quantity: number | null) => valueText(quantity, request.field, props.format);
  if (request.state !== 'pending') {
    const how = request.decidedBy === 'policy' ? 'Approved by policy' : 'Approved at once';
    return (
      <div class="notice notice-done" role="status">
        <p>
          {how}: the {props.subject} is now {value(request.granted)}.
        </p>
      </div>
    );
  }
  return (
    <div class="notice notice-done" role="status">
      <p>
        Requested the {props.subject}: {value(request.current)} → {value(request.preferred)}.{' '}
        {props.decidedSince ? 'It has been decided since: see the recent decisions.' : pendingWords}{' '}
        {props.listed ? <RequestLink id={request.id}>Show it among the pending requests</RequestLink> : null}
      </p>
    </div>
  );
}

function OpenNotice({ error, listed }: { error: ApiError; listed: boolean }) {
  return (
    <div class="notice notice-error" role="alert">
      <p>{error.message}.</p>
      <p>
        One request per kind may be open for the organization and for each project: wait for its decision, or cancel it, before asking
        again.{' '}
        {listed && error.openRequest ? <RequestLink id={error.openRequest}>Show the open request</RequestLink> : null}
      </p>
    </div>
  );
}

/** The hash routes pages, so the link moves the focus to the row itself. */
function RequestLink({ id, children }: { id: string; children: string }) {
  return (
    <a
      href={`#${rowIdOf(id)}`}
      onClick={(event) => {
        event.preventDefault();
        focusRequest(id);
      }}
    >
      {children}
    </a>
  );
}
