/**
 * The latest decided requests, newest decision first: what was asked, and how it ended in
 * words (approved for how much and by whom, denied and why, cancelled, expired). The state's
 * badge repeats the words in colour; the words alone carry it.
 */
import { Empty } from '../../components/Notice.js';
import { TableScroll } from '../../components/TableScroll.js';
import { formatTime } from '../../format.js';
import { changeText, outcomeOf, subjectText, type KindOf, type RecentRequests } from '../../requests.js';

export function RecentRequestsTable({ recent, kindOf }: { recent: RecentRequests; kindOf: KindOf }) {
  if (recent.items.length === 0) return <Empty>No request has been decided yet.</Empty>;
  return (
    <>
      <TableScroll label="Recent decisions table">
        <table class="requests-recent">
          <caption class="visually-hidden">Quota requests decided lately, newest decision first</caption>
          <thead>
            <tr>
              <th scope="col">Request</th>
              <th scope="col">Then → preferred</th>
              <th scope="col">Outcome</th>
              <th scope="col">Requested</th>
            </tr>
          </thead>
          <tbody>
            {recent.items.map((request) => {
              const kind = kindOf(request.kind);
              const outcome = outcomeOf(request, kind.format);
              return (
                <tr key={request.id}>
                  <th scope="row">{subjectText(request.field, kind.displayName, request.project)}</th>
                  <td>{changeText(request, kind.format)}</td>
                  <td>
                    <span class={`badge badge-request-${request.state}`}>{outcome.state}</span> {outcome.detail}
                  </td>
                  <td>
                    {request.requestedBy}
                    <div class="muted">{formatTime(request.requestedAt)}</div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </TableScroll>
      {recent.complete ? null : (
        <p class="muted">More requests were made than this page reads; later decisions may be missing here.</p>
      )}
    </>
  );
}
