/** API tokens: made, listed and revoked; each with one role and a scope. */
import {
  checkTokenInput,
  createToken,
  listTokens,
  principalOfToken,
  revokeToken,
  type Token,
  type TokenGrant,
  type TokenInput,
} from '../tokens/tokens.js';
import type { Core } from '../core.js';

export const tokensOf = (core: Core) => ({
    createToken(input: TokenInput, options: { principal?: string } = {}) {
      const checked = checkTokenInput(input, core.clock.nowMs());
      return core.write(options, ({ tx, dialect, nowMs, principal }) =>
        createToken(tx, dialect.keyShareRowsSuffix, checked, principal, nowMs),
      );
    },

    listTokens(): Promise<Token[]> {
      return core.read((tx) => listTokens(tx));
    },

    async revokeToken(id: string): Promise<void> {
      await core.write({}, ({ tx, nowMs }) => revokeToken(tx, id, nowMs));
      core.credentialsChanged();
    },

    /** The principal of an API token and its expiry, or undefined for an unknown, revoked or expired one. */
    principalOfToken(token: string): Promise<TokenGrant | undefined> {
      return core.read((tx) => principalOfToken(tx, token, core.clock.nowMs()));
    },

    /**
     * Calls `listener` after a commit in this process that may have ended credentials (a token
     * revoked, a project deleted with its tokens), so caches of authentication drop at once.
     */
    onCredentialsChanged(listener: () => void): () => void {
      core.credentialListeners.add(listener);
      return () => core.credentialListeners.delete(listener);
    },

    /** One round trip to the database, for health checks. */
    async ping(): Promise<void> {
      await core.read((tx) => tx.get('SELECT 1 AS ok'));
    },
});
