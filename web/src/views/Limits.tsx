/**
 * Limits per project, service and region: configured (what the region's host enforces),
 * active (max(configured, usage)) and usage, with regions whose own controller has not synced
 * their usage lately flagged as stale.
 */
import { useState } from 'preact/hooks';
import type { Limit } from '../api.js';
import { Empty, ErrorNotice, Loading } from '../components/Notice.js';
import { Pager, usePaging } from '../components/Pager.js';
import { UsageBar } from '../components/UsageBar.js';
import { exactly, formatTime } from '../format.js';
import { useLoad } from '../hooks.js';
import type { Session } from '../session.js';
import { OrganizationFrame } from './Organization.js';
import { TableScroll } from '../components/TableScroll.js';

const projectsPerPage = 10;
const statusText = {
  ok: 'reached',
  stale: 'stale',
  unknown: 'not yet reached',
  none: 'no host registered',
  disabled: 'region not enabled for the project',
} as const;

export function LimitsView({ session, organization }: { session: Session; organization: string }) {
  const [project, setProject] = useState('');
  const [applied, setApplied] = useState('');
  const paging = usePaging();
  // A token that sees one project reads that project's limits (it cannot list the others').
  const own = session.me.project;
  const limits = useLoad(
    async () =>
      own === null
        ? session.client.limits(organization, { project: applied || undefined, cursor: paging.cursor, limit: projectsPerPage })
        : { items: (await session.client.projectLimits(organization, own)).items, nextCursor: null },
    [session, organization, applied, paging.cursor],
  );
  return (
    <OrganizationFrame session={session} organization={organization} current="limits">
      {() => (
        <section aria-labelledby="limits-heading">
          <h2 id="limits-heading">Limits</h2>
          {own === null ? (
            <form
              class="toolbar"
              role="search"
              aria-label="Filter limits"
              onSubmit={(event) => {
                event.preventDefault();
                paging.reset();
                setApplied(project.trim());
              }}
            >
              <label for="limits-project">Project</label>
              <input id="limits-project" type="search" value={project} onInput={(event) => setProject(event.currentTarget.value)} />
              <button type="submit">Filter</button>
            </form>
          ) : null}
          <ErrorNotice error={limits.error} />
          {limits.data === undefined ? (
            limits.loading ? <Loading what="limits" /> : null
          ) : limits.data.items.length === 0 ? (
            <Empty>No limits{applied ? ` for project ${applied}` : ''}.</Empty>
          ) : (
            <TableScroll label="Limits table">
              <table class="limits">
                <thead>
                  <tr>
                    <th scope="col">Project</th>
                    <th scope="col">Service / type</th>
                    <th scope="col">Region</th>
                    <th scope="col">Usage against the configured limit</th>
                    <th scope="col">Configured</th>
                    <th scope="col">Active</th>
                    <th scope="col">Usage</th>
                    <th scope="col">Host</th>
                    <th scope="col">Usage reported</th>
                  </tr>
                </thead>
                <tbody>{limits.data.items.flatMap((limit) => limitRows(limit))}</tbody>
              </table>
            </TableScroll>
          )}
          <Pager paging={paging} nextCursor={limits.data?.nextCursor ?? null} label="Limits" />
        </section>
      )}
    </OrganizationFrame>
  );
}

function limitRows(limit: Limit) {
  return limit.regions.map((region, index) => {
    const stale = region.hostStatus === 'stale';
    return (
      <tr key={`${limit.project}/${limit.service}/${limit.resourceType}/${region.region}`} class={stale ? 'stale' : undefined}>
        <td>{index === 0 ? limit.project : <span class="visually-hidden">{limit.project}</span>}</td>
        <td>
          {index === 0 ? (
            <>
              {limit.service} / {limit.resourceType}
              {limit.global !== null ? <div class="muted">at most {exactly(limit.global)} across regions</div> : null}
            </>
          ) : (
            <span class="visually-hidden">
              {limit.service} / {limit.resourceType}
            </span>
          )}
        </td>
        <td>{region.region}</td>
        <td class="bar-cell">
          <UsageBar
            label={`${limit.project} ${limit.service}/${limit.resourceType} in ${region.region}`}
            limit={region.configuredLimit}
            committed={region.usage}
            reserved={0}
            held={0}
            format="decimal"
          />
        </td>
        <td>{exactly(region.configuredLimit)}</td>
        <td>
          {exactly(region.activeLimit)}
          {region.gap > 0 ? <div class="warning-text">{exactly(region.gap)} above configured</div> : null}
        </td>
        <td>{exactly(region.usage)}</td>
        <td>
          <span class={`badge badge-${region.hostStatus}`}>{stale ? '⚠ stale' : statusText[region.hostStatus]}</span>
          {stale ? <div class="muted">usage may be old</div> : null}
        </td>
        <td>{formatTime(region.usageReportedAt)}</td>
      </tr>
    );
  });
}
