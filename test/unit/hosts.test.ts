// Goal: a database URL with several hosts, as libpq writes it, becomes one URL per host in
// order, each keeping the user, database and parameters; target_session_attrs=read-write or
// primary asks for a writable host, any (or none) for whichever answers; anything else, or an
// empty host in a list, is refused with a clear error. Method: parseHosts on literal URLs.
import { describe, expect, it } from 'vitest';
import { parseHosts } from '../../src/store/postgres/hosts.js';

describe('database URLs with several hosts', () => {
  it('keeps a single host as it is', () => {
    expect(parseHosts('postgres://allot@db:5432/allot?application_name=x')).toEqual({
      urls: ['postgres://allot@db:5432/allot?application_name=x'],
      writable: false,
    });
  });

  it('splits a host list in order, with the user, database and parameters on each', () => {
    expect(parseHosts('postgresql://allot:secret@h1:5432,h2:5433/allot?target_session_attrs=read-write&sslmode=disable')).toEqual({
      urls: ['postgresql://allot:secret@h1:5432/allot?sslmode=disable', 'postgresql://allot:secret@h2:5433/allot?sslmode=disable'],
      writable: true,
    });
    expect(parseHosts('postgres://h1,h2/allot?target_session_attrs=primary')).toEqual({
      urls: ['postgres://h1/allot', 'postgres://h2/allot'],
      writable: true,
    });
    expect(parseHosts('postgres://h1,h2/allot?target_session_attrs=any').writable).toBe(false);
  });

  it('takes the user part to its last @, and the query from its first ?', () => {
    expect(parseHosts('postgres://u:p@ss@h1,h2/db?application_name=a?b').urls).toEqual([
      'postgres://u:p@ss@h1/db?application_name=a%3Fb',
      'postgres://u:p@ss@h2/db?application_name=a%3Fb',
    ]);
    expect(parseHosts('postgres://[::1]:5432,h2/db').urls).toEqual(['postgres://[::1]:5432/db', 'postgres://h2/db']);
  });

  it('refuses what it cannot honour', () => {
    expect(() => parseHosts('postgres://h1,h2/allot?target_session_attrs=standby')).toThrow(/supports any, read-write and primary/);
    expect(() => parseHosts('postgres://h1,,h2/allot')).toThrow(/empty host/);
  });
});
