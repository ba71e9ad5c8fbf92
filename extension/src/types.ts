/**
 * The mesh_nb state protocol (comm target `mesh_nb`) and formatting helpers.
 *
 * The kernel sends `IMeshState` messages; the frontend sends `{type: 'request_state'}`.
 * None of this ever carries a data value: names, purposes, budgets, redacted query text,
 * release ids, epsilons, and the columns and entity types of PII alerts.
 */

/** The comm target both sides use. */
export const COMM_TARGET = 'mesh_nb';

/** The MIME type of a release bundle. */
export const RELEASE_MIME = 'application/vnd.mesh-nb.release+json';

/** The budget of one bound product. */
export interface IBudget {
  product: string;
  epsilon_total: number | null;
  epsilon_spent?: number | null;
  epsilon_remaining: number | null;
  scope: string | null;
}

/** One release of the bound session (from the ledger). */
export interface IReleaseInfo {
  release_id: string;
  sql: string;
  epsilon: number;
  delta?: number;
  purpose: string | null;
  products: string[];
  cached?: boolean;
  ts?: string;
}

/** One PII alert raised by the autoscan. */
export interface IAlertInfo {
  frame: string;
  column: string;
  entity: string;
  problem: string;
  fix?: string;
}

/** What the kernel tells the lab. */
export interface IMeshState {
  type: 'state';
  version?: number;
  bound: boolean;
  products: string[];
  purpose: string | null;
  description: string | null;
  legal_basis: string | null;
  access: string | null;
  analyst: string | null;
  session?: string | null;
  budgets: IBudget[];
  releases: IReleaseInfo[];
  alerts: IAlertInfo[];
}

/** True for a well-formed state message. */
export function isState(data: unknown): data is IMeshState {
  return (
    typeof data === 'object' &&
    data !== null &&
    (data as any).type === 'state' &&
    typeof (data as any).bound === 'boolean'
  );
}

/** An epsilon as people read it: 3 → "3.0", 2.1 → "2.1", 2.125 → "2.13". */
export function formatEpsilon(value: number | null | undefined): string {
  if (value === null || value === undefined || !isFinite(value)) {
    return '–';
  }
  const rounded = Math.round(value * 100) / 100;
  if (Number.isInteger(rounded * 10)) {
    return rounded.toFixed(1);
  }
  return rounded.toFixed(2);
}

/** The budget that binds first: the smallest remaining epsilon among the bound products. */
export function tightestBudget(state: IMeshState): IBudget | null {
  let best: IBudget | null = null;
  for (const b of state.budgets) {
    if (b.epsilon_total === null || b.epsilon_remaining === null) {
      continue;
    }
    if (
      best === null ||
      b.epsilon_remaining < (best.epsilon_remaining as number)
    ) {
      best = b;
    }
  }
  return best;
}

/** The status bar text, e.g. `customers · churn-analysis · ε 2.1 of 3.0 left`. */
export function statusText(state: IMeshState | null): string {
  if (state === null || !state.bound) {
    return 'mesh: not bound';
  }
  const head = `${state.products.join(', ')} · ${state.purpose}`;
  const budget = tightestBudget(state);
  if (budget === null) {
    return `${head} · ${state.access ?? 'rows'}`;
  }
  return (
    `${head} · ε ${formatEpsilon(budget.epsilon_remaining)} of ` +
    `${formatEpsilon(budget.epsilon_total)} left`
  );
}
