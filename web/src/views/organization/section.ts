import type { Session } from '../../session.js';

/** What each section of the organization page is given. */
export interface SectionProps {
  session: Session;
  organization: string;
  /** Bumped by the live feed: the section reads its numbers again. */
  version: number;
  /** A token that sees one project: the section shows that project only. */
  project?: string;
}
