/** Which pages a key sees follows the roles it holds (its account's; a restricted key's at most user); the address is a hash (#/keys), so the server serves one page. */
export type Role = 'ADMIN' | 'DESIGNER' | 'PROVIDER' | 'USER';
export type PageId = 'activity' | 'keys' | 'credits' | 'playground' | 'models' | 'workflows' | 'runs' | 'provider' | 'admin';

export interface PageInfo {
  readonly id: PageId;
  readonly title: string;
  readonly roles: readonly Role[];
  /** Shown to an account without any role too: it still reads its own records (README, Roles) and the public catalog. */
  readonly readOnly?: true;
}

export const PAGES: readonly PageInfo[] = [
  { id: 'activity', title: 'Activity', roles: ['USER', 'ADMIN'], readOnly: true },
  { id: 'keys', title: 'Keys', roles: ['USER', 'ADMIN'] },
  { id: 'credits', title: 'Credits', roles: ['USER', 'ADMIN'], readOnly: true },
  { id: 'playground', title: 'Playground', roles: ['USER', 'ADMIN'] },
  { id: 'workflows', title: 'Workflows', roles: ['DESIGNER', 'ADMIN'] },
  { id: 'runs', title: 'Runs', roles: ['DESIGNER', 'ADMIN'] },
  { id: 'provider', title: 'Provider', roles: ['PROVIDER', 'ADMIN'] },
  { id: 'admin', title: 'Admin', roles: ['ADMIN'] },
  // Last: every role has it, and a key lands on its first page (a designer on Workflows, a provider on Provider).
  { id: 'models', title: 'Models', roles: ['USER', 'DESIGNER', 'PROVIDER', 'ADMIN'], readOnly: true },
];

export const pagesFor = (roles: readonly Role[]): PageInfo[] =>
  PAGES.filter((page) => (roles.length === 0 ? page.readOnly : page.roles.some((role) => roles.includes(role))));

/** Whether the account calls models, buys credits and manages its keys and settings (an admin holds every role). */
export const actsAsUser = (roles: readonly Role[]): boolean => roles.includes('USER') || roles.includes('ADMIN');

/**
 * Why a restricted key (a spending limit, or issued to an app: README, Restricted keys) is not offered `what`, said
 * where the page would offer it: the server refuses such a key anything that runs the account.
 */
export const restrictedNote = (what: string): string =>
  `This key has a spending limit or was issued to an app: it can call models and read this account, but not ${what}. Sign in with a key of this account without a limit to do that.`;

/** The page a hash names if the roles allow it, else the first allowed page (null when none is). */
export const pageFromHash = (hash: string, roles: readonly Role[]): PageInfo | null => {
  const allowed = pagesFor(roles);
  const [id] = hashParts(hash) ?? [];
  return allowed.find((page) => page.id === id) ?? allowed[0] ?? null;
};

/**
 * `#/runs/wf_1/run_2` → ['runs', 'wf_1', 'run_2']: the page, then what it shows (a page reads the rest itself); null
 * for a hash that is no percent-encoding (`#/runs/%zz`), which names no page: decodeURIComponent would throw.
 */
export const hashParts = (hash: string): string[] | null => {
  try {
    return hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  } catch {
    return null;
  }
};
