/**
 * One organization: its quotas per kind, how its projects divide them (caps, guarantees,
 * usage), its quota requests, its live allocations, its journal as a live feed, and its
 * webhooks (for those who may manage them, whose thresholds the quota bars draw). A journal
 * entry arriving reloads the numbers, so the bars follow the ledger without a page reload.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { JournalEntry, Organization as OrganizationRecord } from '../api.js';
import { Empty, ErrorNotice, Loading } from '../components/Notice.js';
import { BarLegend } from '../components/UsageBar.js';
import { useLoad } from '../hooks.js';
import { mayReadOrganization, type Session } from '../session.js';
import { AllocationsSection } from './organization/Allocations.js';
import { JournalFeed } from './organization/Journal.js';
import { ProjectsSection } from './organization/Projects.js';
import { QuotasSection } from './organization/Quotas.js';
import { RequestsSection } from './organization/Requests.js';
import { WebhooksSection } from './organization/Webhooks.js';
import { useSubscriptions } from '../webhooks.js';

export function OrganizationTabs({ organization, current }: { organization: string; current: 'overview' | 'history' | 'limits' }) {
  const tabs = [
    ['overview', `#/o/${organization}`, 'Overview'],
    ['history', `#/o/${organization}/history`, 'History'],
    ['limits', `#/o/${organization}/limits`, 'Limits'],
  ] as const;
  return (
    <nav class="tabs" aria-label="Organization views">
      {tabs.map(([name, href, label]) => (
        <a key={name} href={href} aria-current={current === name ? 'page' : undefined}>
          {label}
        </a>
      ))}
    </nav>
  );
}

/** Reads the organization first: a tenant the token may not see answers 404, said plainly. */
export function OrganizationFrame({
  session,
  organization,
  current,
  children,
}: {
  session: Session;
  organization: string;
  current: 'overview' | 'history' | 'limits';
  children: (record: OrganizationRecord) => preact.ComponentChildren;
}) {
  const record = useLoad(() => session.client.organization(organization), [session, organization]);
  if (record.data === undefined) {
    return (
      <main id="content">
        <h1>{organization}</h1>
        {record.loading ? <Loading what="the organization" /> : <ErrorNotice error={record.error} />}
      </main>
    );
  }
  return (
    <main id="content">
      <h1>
        {record.data.displayName}
        {record.data.displayName !== organization ? <span class="muted"> ({organization})</span> : null}
      </h1>
      <OrganizationTabs organization={organization} current={current} />
      {children(record.data)}
    </main>
  );
}

export function OrganizationView({ session, organization }: { session: Session; organization: string }) {
  // Bumped by every journal entry (at most every 300 ms): the sections reload their numbers.
  const [version, setVersion] = useState(0);
  // Bumped with it when a quota-request entry came: the requests' lists are read again only then.
  const [requestsVersion, setRequestsVersion] = useState(0);
  const requestsChanged = useRef(false);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  // The journal's newest revision as the feed has seen it: a webhook behind it has a change to send.
  const newestRevision = useRef(0);
  useEffect(() => () => void (pending.current && clearTimeout(pending.current)), []);
  const onEntry = (entry: JournalEntry) => {
    // The first is the feed's tail, which may hold a request filed after the lists were read.
    if (newestRevision.current === 0 || entry.action.startsWith('quota-request.')) requestsChanged.current = true;
    newestRevision.current = Math.max(newestRevision.current, entry.revision);
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = null;
      setVersion((value) => value + 1);
      if (requestsChanged.current) setRequestsVersion((value) => value + 1);
      requestsChanged.current = false;
    }, 300);
  };
  const wide = mayReadOrganization(session);
  // Read by any organization-wide role: only the server says who may manage them (403).
  const subscriptions = useSubscriptions(session, organization, { version, newestRevision: newestRevision.current }, wide);
  const thresholds = subscriptions.items?.flatMap((subscription) => subscription.thresholds) ?? [];
  return (
    <OrganizationFrame session={session} organization={organization} current="overview">
      {() => (
        <>
          <BarLegend alerts={thresholds.some((spec) => spec.scope === 'organization')} />
          <QuotasSection session={session} organization={organization} version={version} thresholds={thresholds} />
          {wide ? (
            <>
              <ProjectsSection session={session} organization={organization} version={version} />
              <RequestsSection session={session} organization={organization} version={version} requestsVersion={requestsVersion} />
              <div class="columns">
                <AllocationsSection session={session} organization={organization} version={version} />
                <JournalFeed session={session} organization={organization} onEntry={onEntry} />
              </div>
              <WebhooksSection session={session} organization={organization} subscriptions={subscriptions} />
            </>
          ) : session.me.project !== null ? (
            <>
              <ProjectsSection session={session} organization={organization} version={version} project={session.me.project} />
              {/* Without the journal, the section waits on the server for its decisions, and the numbers follow them. */}
              <RequestsSection
                session={session}
                organization={organization}
                version={version}
                requestsVersion={requestsVersion}
                onDecided={() => setVersion((value) => value + 1)}
              />
              <AllocationsSection session={session} organization={organization} version={version} project={session.me.project} />
              <Empty>The journal and the other projects need an organization-wide role; reload to see new numbers.</Empty>
            </>
          ) : null}
        </>
      )}
    </OrganizationFrame>
  );
}
