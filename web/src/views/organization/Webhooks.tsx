/**
 * The organization's webhook subscriptions: what each sends and how its deliveries stand,
 * with Resume for one that stopped or is retrying and Delete (asked first), and a form to add
 * one. Only a token that may manage them sees the section: anyone else's read is refused
 * (403), and the section is simply not there.
 */
import { useRef, useState } from 'preact/hooks';
import type { Subscription } from '../../api.js';
import { ConfirmDialog } from '../../components/ConfirmDialog.js';
import { Empty, ErrorNotice } from '../../components/Notice.js';
import { TableScroll } from '../../components/TableScroll.js';
import { formatTime, type KindFormat } from '../../format.js';
import { useLoad } from '../../hooks.js';
import type { Session } from '../../session.js';
import {
  deliveredText,
  deliveryText,
  denialsText,
  journalText,
  mayResume,
  thresholdText,
  type Subscriptions,
} from '../../webhooks.js';
import { WebhookForm } from './WebhookForm.js';

export function WebhooksSection(props: { session: Session; organization: string; subscriptions: Subscriptions }) {
  const { session, organization, subscriptions } = props;
  const [deleting, setDeleting] = useState<Subscription | null>(null);
  const [actionError, setActionError] = useState<unknown>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const kinds = useLoad(() => session.client.kinds(), [session]);
  const formatOf = (kind: string): KindFormat => kinds.data?.items.find((k) => k.name === kind)?.format ?? 'decimal';
  // Refused: not this token's to manage. Not read yet: nothing, so a refusal never flashes.
  // Unreadable otherwise (the server down): the section says why.
  if (subscriptions.items === null || (subscriptions.items === undefined && !subscriptions.error)) return null;
  const act = async (action: () => Promise<unknown>) => {
    setActionError(null);
    try {
      await action();
    } catch (error) {
      setActionError(error);
    }
    subscriptions.reload();
  };
  const remove = async (subscription: Subscription) => {
    setDeleting(null);
    await act(() => session.client.deleteSubscription(organization, subscription.id));
    // Its row, and the button that asked, are gone: the focus goes back to the section.
    heading.current?.focus();
  };
  const items = subscriptions.items;
  return (
    <section aria-labelledby="webhooks-heading" class="webhooks">
      <h2 id="webhooks-heading" ref={heading} tabIndex={-1}>
        Webhooks
      </h2>
      <ErrorNotice error={actionError ?? subscriptions.error} />
      {items === undefined ? null : items.length === 0 ? (
        <Empty>No webhooks yet: nothing is sent anywhere.</Empty>
      ) : (
        <WebhooksTable
          items={items}
          formatOf={formatOf}
          onResume={(subscription) => void act(() => session.client.resumeSubscription(organization, subscription.id))}
          onDelete={setDeleting}
        />
      )}
      <WebhookForm session={session} organization={organization} kinds={kinds.data?.items ?? []} onCreated={subscriptions.reload} />
      <ConfirmDialog
        open={deleting !== null}
        title={`Delete the webhook to ${deleting?.url ?? ''}?`}
        confirmLabel="Delete it"
        onConfirm={() => deleting && void remove(deleting)}
        onCancel={() => setDeleting(null)}
      >
        <p>Nothing more is sent to it; a delivery already on its way may still arrive. Its secret cannot be brought back.</p>
      </ConfirmDialog>
    </section>
  );
}

function WebhooksTable(props: {
  items: Subscription[];
  formatOf: (kind: string) => KindFormat;
  onResume: (subscription: Subscription) => void;
  onDelete: (subscription: Subscription) => void;
}) {
  return (
    <TableScroll label="Webhooks table">
      <table class="subscriptions">
        <caption class="visually-hidden">Webhook subscriptions, what they send and how their deliveries stand</caption>
        <thead>
          <tr>
            <th scope="col">URL</th>
            <th scope="col">Sends</th>
            <th scope="col">Delivery</th>
            <th scope="col">Last delivered</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {props.items.map((subscription) => (
            <WebhookRow
              key={subscription.id}
              subscription={subscription}
              formatOf={props.formatOf}
              onResume={() => props.onResume(subscription)}
              onDelete={() => props.onDelete(subscription)}
            />
          ))}
        </tbody>
      </table>
    </TableScroll>
  );
}

function WebhookRow(props: {
  subscription: Subscription;
  formatOf: (kind: string) => KindFormat;
  onResume: () => void;
  onDelete: () => void;
}) {
  const { subscription } = props;
  const sends = [
    journalText(subscription.journal),
    ...subscription.thresholds.map((spec) => thresholdText(spec, props.formatOf(spec.kind))),
    denialsText(subscription.denials),
  ].filter((text): text is string => text !== null);
  return (
    <tr>
      <td>
        <code class="url">{subscription.url}</code>
        <div class="muted">
          added {formatTime(subscription.createdAt)} by {subscription.createdBy}
        </div>
      </td>
      <td>
        <ul class="plain">
          {sends.map((text) => (
            <li key={text}>{text}</li>
          ))}
        </ul>
      </td>
      <td>
        {subscription.deliveries.length === 0 ? <span class="muted">no delivery yet</span> : null}
        {subscription.deliveries.map((delivery) => {
          const { state, error } = deliveryText(delivery);
          return (
            <div key={delivery.organization} class="delivery">
              <span class={`badge badge-${delivery.state}`}>{state}</span>
              {error ? <div class="warning-text">{error}</div> : null}
            </div>
          );
        })}
      </td>
      <td>
        {subscription.deliveries.map((delivery) => (
          <div key={delivery.organization}>{deliveredText(delivery)}</div>
        ))}
      </td>
      <td class="actions">
        {mayResume(subscription) ? (
          <button type="button" onClick={props.onResume} aria-label={`Resume deliveries to ${subscription.url}`}>
            Resume
          </button>
        ) : null}
        <button type="button" onClick={props.onDelete} aria-label={`Delete the webhook to ${subscription.url}`}>
          Delete
        </button>
      </td>
    </tr>
  );
}
