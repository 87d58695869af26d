/**
 * The organization's quota per kind with its usage; service-admins change a quota here.
 * A cut below usage is refused by the server unless forced, and forcing asks first. The
 * organization's webhook thresholds are drawn on each kind's bar.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Answer, QuotaSet, QuotaUsage, ThresholdSpec } from '../../api.js';
import { ForcibleEditor } from '../../components/ForcibleEditor.js';
import { ErrorNotice, Loading } from '../../components/Notice.js';
import { QuantityField } from '../../components/QuantityField.js';
import { UsageBar, type Alert } from '../../components/UsageBar.js';
import { useForcibleSave } from '../../forcible.js';
import { exactly, formatQuantity, parseQuantityField } from '../../format.js';
import { useLoad } from '../../hooks.js';
import { mayAdminister } from '../../session.js';
import { TableScroll } from '../../components/TableScroll.js';
import { alertsOf } from '../../webhooks.js';
import type { SectionProps } from './section.js';

/** `thresholds`: every threshold of the organization's subscriptions (none if unreadable). */
export function QuotasSection({ session, organization, version, thresholds }: SectionProps & { thresholds: readonly ThresholdSpec[] }) {
  const quotas = useLoad(() => session.client.quotas(organization), [session, organization, version]);
  const [editing, setEditing] = useState<string | null>(null);
  const admin = mayAdminister(session);
  return (
    <section aria-labelledby="quotas-heading">
      <h2 id="quotas-heading">Quotas</h2>
      <ErrorNotice error={quotas.error} />
      {quotas.data === undefined ? (
        quotas.loading ? <Loading what="quotas" /> : null
      ) : (
        <TableScroll label="Quotas table">
          <table class="quotas">
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">Usage</th>
                <th scope="col">Quota</th>
                <th scope="col">Committed</th>
                <th scope="col">Reserved</th>
                <th scope="col">Held</th>
                <th scope="col">Guaranteed</th>
                <th scope="col">Free for any project</th>
                {admin ? <th scope="col"><span class="visually-hidden">Actions</span></th> : null}
              </tr>
            </thead>
            <tbody>
              {quotas.data.body.quotas.map((quota) => (
                <QuotaRow
                  key={quota.kind}
                  quota={quota}
                  alerts={alertsOf(thresholds, quota.kind, quota.quantity, quota.format)}
                  admin={admin}
                  editing={editing === quota.kind}
                  onEdit={() => setEditing(quota.kind)}
                  onClose={() => setEditing(null)}
                  etag={quotas.data!.etag}
                  readCurrent={() => session.client.quotas(organization)}
                  save={async (quantity, etag, force) => {
                    await session.client.setQuota(organization, quota.kind, quantity, etag, force);
                  }}
                  onSaved={() => {
                    setEditing(null);
                    quotas.reload();
                  }}
                />
              ))}
            </tbody>
          </table>
        </TableScroll>
      )}
    </section>
  );
}

interface RowProps {
  quota: QuotaUsage;
  alerts: readonly Alert[];
  admin: boolean;
  editing: boolean;
  /** The ETag of the quotas as last read. */
  etag: string | null;
  onEdit: () => void;
  onClose: () => void;
  save: (quantity: number | string | null, etag: string | null, force: boolean) => Promise<void>;
  /** The quotas as they are now, read afresh. */
  readCurrent: () => Promise<Answer<QuotaSet>>;
  onSaved: () => void;
}

function QuotaRow(props: RowProps) {
  const { quota } = props;
  const fmt = (value: number | null) => formatQuantity(value, quota.format);
  // Closing the editor gives the focus back to the button that opened it.
  const change = useRef<HTMLButtonElement>(null);
  const wasEditing = useRef(props.editing);
  useEffect(() => {
    if (wasEditing.current && !props.editing) change.current?.focus();
    wasEditing.current = props.editing;
  }, [props.editing]);
  return (
    <>
      <tr>
        <th scope="row">
          {quota.displayName}
          <div class="muted">{quota.kind}</div>
        </th>
        <td class="bar-cell">
          <UsageBar
            label={quota.displayName}
            limit={quota.quantity}
            committed={quota.committed}
            reserved={quota.reserved}
            held={quota.held}
            format={quota.format}
            alerts={props.alerts}
          />
        </td>
        <td title={exactly(quota.quantity)}>
          {fmt(quota.quantity)}
          {quota.source === 'default' ? <div class="muted">kind default</div> : null}
          {quota.overLimit ? <div class="warning-text">over the quota</div> : null}
        </td>
        <td title={exactly(quota.committed)}>{fmt(quota.committed)}</td>
        <td title={exactly(quota.reserved)}>{fmt(quota.reserved)}</td>
        <td title={exactly(quota.held)}>{fmt(quota.held)}</td>
        <td title={exactly(quota.guaranteed)}>{fmt(quota.guaranteed)}</td>
        <td title={exactly(quota.freeForAnyProject)}>{fmt(quota.freeForAnyProject)}</td>
        {props.admin ? (
          <td>
            {props.editing ? null : (
              <button ref={change} type="button" onClick={props.onEdit} aria-label={`Change the ${quota.displayName} quota`}>
                Change
              </button>
            )}
          </td>
        ) : null}
      </tr>
      {props.editing ? (
        <tr class="editor">
          <td colSpan={9}>
            <QuotaEditor {...props} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

/**
 * Mounted when the editor opens: it starts from the quota as shown then and sends the ETag
 * read then, so a change someone else makes meanwhile is refused (412), never overwritten,
 * however often the numbers reload underneath. On a 412 it reads the quotas afresh (the
 * page's copy may be as old as the draft) and offers to start again from them.
 */
function QuotaEditor(props: RowProps) {
  const [base, setBase] = useState({ quota: props.quota, etag: props.etag });
  const fmt = (value: number | null) => formatQuantity(value, base.quota.format);
  const [text, setText] = useState(base.quota.quantity === null ? '' : String(base.quota.quantity));
  const parsed = parseQuantityField(text);
  const saving = useForcibleSave(async (force) => {
    if (parsed.ok) await props.save(parsed.value, base.etag, force);
  }, props.onSaved);
  const current = useLoad(async () => (saving.conflict ? props.readCurrent() : null), [saving.conflict]);
  const now = current.data?.body.quotas.find((quota) => quota.kind === base.quota.kind);
  const { displayName } = base.quota;
  return (
    <ForcibleEditor
      saving={saving}
      canSave={parsed.ok}
      onClose={props.onClose}
      conflictMessage="The quotas changed since you opened this editor; nothing was saved."
      conflict={
        saving.conflict
          ? {
              now: now ? `The ${displayName} quota is now ${fmt(now.quantity)}, with ${fmt(now.used)} in use.` : null,
              restartLabel: 'Start again from the current quota',
              restart: () => {
                if (!now || !current.data) return;
                setBase({ quota: now, etag: current.data.etag });
                setText(now.quantity === null ? '' : String(now.quantity));
              },
            }
          : null
      }
      confirm={{
        title: `Cut the ${displayName} quota below its usage?`,
        label: 'Force the cut',
        consequence: `Nothing already allocated is taken away, but every new allocation of ${displayName} is refused until usage falls under the new quota.`,
      }}
    >
      <QuantityField
        id={`quota-${base.quota.kind}`}
        label={`New ${displayName} quota`}
        value={text}
        onInput={setText}
        focus
        format={base.quota.format}
        hint={`Empty: the kind's default (${fmt(base.quota.default)}). ${base.quota.format === 'binary' ? 'e.g. 512Gi' : 'e.g. 100'}`}
      />
    </ForcibleEditor>
  );
}
