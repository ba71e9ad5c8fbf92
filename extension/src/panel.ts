/**
 * The "Mesh" side panel: the binding with its purpose, the budget, the session's latest
 * releases, PII alerts, and (for owners, from the server extension) the product's ledger.
 */
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { clear, h } from './dom';
import {
  ILedgerEntry,
  ILedgerReply,
  IProductInfo,
  requestAPI
} from './request';
import { MeshStateTracker } from './tracker';
import { IMeshState, formatEpsilon } from './types';

const MESH_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
  '<g class="jp-icon3" fill="#616161">' +
  '<circle cx="5" cy="5" r="2.5"/><circle cx="19" cy="5" r="2.5"/>' +
  '<circle cx="12" cy="12" r="2.5"/><circle cx="5" cy="19" r="2.5"/>' +
  '<circle cx="19" cy="19" r="2.5"/>' +
  '<path d="M5 5L19 19M19 5L5 19M5 5H19M5 19H19" stroke="#616161" ' +
  'stroke-width="1.2" fill="none"/></g></svg>';

/** The mesh icon (side bar tab). */
export const meshIcon = new LabIcon({ name: 'mesh-nb:mesh', svgstr: MESH_SVG });

const KINDS = [
  'session.bound',
  'session.ended',
  'query.released',
  'query.rejected',
  'pii.detected',
  'budget.exhausted'
];

function section(title: string, ...body: (Node | null)[]): HTMLElement {
  return h(
    'section',
    { class: 'jp-MeshPanel-section' },
    h('h3', { class: 'jp-MeshPanel-title' }, title),
    ...body
  );
}

function detailText(entry: ILedgerEntry): string {
  const d = entry.details || {};
  const parts: string[] = [];
  if (typeof d.query === 'string') {
    parts.push(d.query);
  }
  if (typeof d.frame === 'string') {
    parts.push(`frame ${d.frame}`);
  }
  if (d.entity_types && typeof d.entity_types === 'object') {
    parts.push(
      Object.entries(d.entity_types as Record<string, number>)
        .map(([k, v]) => `${k}×${v}`)
        .join(', ')
    );
  }
  if (typeof d.rule === 'string') {
    parts.push(`rule ${d.rule}`);
  }
  if (d.cached === true) {
    parts.push('(cached)');
  }
  if (typeof d.remaining_epsilon === 'number') {
    parts.push(`ε left ${formatEpsilon(d.remaining_epsilon)}`);
  }
  return parts.join(' · ');
}

/** The side panel. */
export class MeshPanel extends Widget {
  constructor(
    tracker: MeshStateTracker,
    serverSettings?: ServerConnection.ISettings
  ) {
    super();
    this.id = 'mesh-nb-panel';
    this.addClass('jp-MeshPanel');
    this.title.icon = meshIcon;
    this.title.caption = 'Mesh: purpose, budget, releases, ledger';
    this._tracker = tracker;
    this._settings = serverSettings ?? ServerConnection.makeSettings();
    this._sessionNode = h('div', { class: 'jp-MeshPanel-session' });
    this._ledgerNode = h('div', { class: 'jp-MeshPanel-ledger' });
    this.node.appendChild(
      h('header', { class: 'jp-MeshPanel-header' }, h('h2', {}, 'Mesh'))
    );
    this.node.appendChild(this._sessionNode);
    this.node.appendChild(this._ledgerNode);
    this._buildLedger();
    tracker.changed.connect(this._onState, this);
    this._renderSession(tracker.state);
  }

  /** Re-read the products and the ledger from the server. */
  async refreshLedger(): Promise<void> {
    await this._loadProducts();
    await this._loadLedger();
  }

  protected onAfterShow(): void {
    void this.refreshLedger();
  }

  private _onState(_: MeshStateTracker, state: IMeshState | null): void {
    this._renderSession(state);
    const bound = state?.bound ? state.products[0] : null;
    if (bound && this._productSelect.value === '' && this._products.length) {
      this._productSelect.value = bound;
    }
    if (this.isVisible) {
      // the ledger changes with every release and bind: follow it
      if (this._ledgerTimer) {
        window.clearTimeout(this._ledgerTimer);
      }
      this._ledgerTimer = window.setTimeout(() => {
        void this.refreshLedger();
      }, 300);
    }
  }

  private _renderSession(state: IMeshState | null): void {
    const node = clear(this._sessionNode);
    if (state === null || !state.bound) {
      node.appendChild(
        section(
          'Binding',
          h(
            'p',
            { class: 'jp-MeshPanel-unbound' },
            'mesh: not bound — ',
            h('code', {}, '%load_ext mesh_nb'),
            ' then ',
            h('code', {}, '%mesh_bind PRODUCT --purpose PURPOSE')
          )
        )
      );
    } else {
      node.appendChild(
        section(
          'Binding',
          h(
            'div',
            { class: 'jp-MeshPanel-binding' },
            h(
              'span',
              { class: 'jp-MeshPanel-products' },
              state.products.join(', ')
            ),
            ' · ',
            h('span', { class: 'jp-MeshPanel-purpose' }, state.purpose ?? ''),
            state.access
              ? h('span', { class: 'jp-MeshPanel-access' }, state.access)
              : null
          ),
          state.description
            ? h('p', { class: 'jp-MeshPanel-description' }, state.description)
            : null,
          h(
            'p',
            { class: 'jp-MeshPanel-legal' },
            'Legal basis: ',
            state.legal_basis ?? 'not stated'
          ),
          h(
            'p',
            { class: 'jp-MeshPanel-analyst' },
            `analyst ${state.analyst ?? '?'}`,
            state.session ? ` · session ${state.session}` : ''
          )
        )
      );
      node.appendChild(this._renderBudgets(state));
    }
    if (state !== null && state.bound) {
      node.appendChild(this._renderReleases(state));
    }
    if (state !== null) {
      node.appendChild(this._renderAlerts(state));
    }
  }

  private _renderBudgets(state: IMeshState): HTMLElement {
    const rows = state.budgets.map(b => {
      if (b.epsilon_total === null || b.epsilon_remaining === null) {
        return h(
          'div',
          { class: 'jp-MeshPanel-budget' },
          `${b.product}: no privacy budget (row access)`
        );
      }
      const share =
        b.epsilon_total > 0 ? b.epsilon_remaining / b.epsilon_total : 0;
      const bar = h('div', { class: 'jp-MeshPanel-bar' });
      const fill = h('div', { class: 'jp-MeshPanel-barFill' });
      fill.style.width = `${Math.max(0, Math.min(1, share)) * 100}%`;
      if (share < 0.2) {
        fill.classList.add('jp-mod-low');
      }
      bar.appendChild(fill);
      bar.setAttribute('role', 'progressbar');
      bar.setAttribute('aria-valuemin', '0');
      bar.setAttribute('aria-valuemax', String(b.epsilon_total));
      bar.setAttribute('aria-valuenow', String(b.epsilon_remaining));
      return h(
        'div',
        { class: 'jp-MeshPanel-budget' },
        h(
          'div',
          { class: 'jp-MeshPanel-budgetText' },
          `${b.product}: ε ${formatEpsilon(b.epsilon_remaining)} of ` +
            `${formatEpsilon(b.epsilon_total)} left` +
            (b.scope ? ` (${b.scope})` : '')
        ),
        bar
      );
    });
    return section('Budget', ...rows);
  }

  private _renderReleases(state: IMeshState): HTMLElement {
    if (!state.releases.length) {
      return section(
        'Releases',
        h(
          'p',
          { class: 'jp-MeshPanel-empty' },
          'No release in this session yet.'
        )
      );
    }
    const list = h('ol', { class: 'jp-MeshPanel-releases' });
    for (const r of state.releases) {
      list.appendChild(
        h(
          'li',
          { class: 'jp-MeshPanel-release', 'data-release': r.release_id },
          h('code', { class: 'jp-MeshPanel-sql' }, r.sql),
          h(
            'div',
            { class: 'jp-MeshPanel-releaseMeta' },
            r.cached
              ? 'ε 0 (same query released before)'
              : `ε ${formatEpsilon(r.epsilon)}`,
            ` · ${r.products.join(', ')}`,
            r.release_id ? ` · ${r.release_id}` : ''
          )
        )
      );
    }
    return section('Releases', list);
  }

  private _renderAlerts(state: IMeshState): HTMLElement {
    if (!state.alerts.length) {
      return section(
        'PII alerts',
        h('p', { class: 'jp-MeshPanel-empty' }, 'No PII alert.')
      );
    }
    const list = h('ul', { class: 'jp-MeshPanel-alerts' });
    for (const a of state.alerts) {
      list.appendChild(
        h(
          'li',
          { class: 'jp-MeshPanel-alert' },
          h('b', {}, `${a.frame}.${a.column}`),
          ' ',
          h('span', { class: 'jp-MeshPanel-entity' }, a.entity),
          h('div', {}, a.problem),
          a.fix ? h('div', { class: 'jp-MeshPanel-fix' }, a.fix) : null
        )
      );
    }
    return section('PII alerts', list);
  }

  // -- the owner's ledger (server extension) -------------------------------------------------

  private _buildLedger(): void {
    this._productSelect = h('select', {
      class: 'jp-MeshPanel-product',
      'aria-label': 'product'
    }) as HTMLSelectElement;
    this._purposeSelect = h('select', {
      class: 'jp-MeshPanel-filterPurpose',
      'aria-label': 'purpose'
    }) as HTMLSelectElement;
    this._kindSelect = h('select', {
      class: 'jp-MeshPanel-filterKind',
      'aria-label': 'kind'
    }) as HTMLSelectElement;
    this._kindSelect.appendChild(h('option', { value: '' }, 'any kind'));
    for (const kind of KINDS) {
      this._kindSelect.appendChild(h('option', { value: kind }, kind));
    }
    this._analystInput = h('input', {
      class: 'jp-MeshPanel-filterAnalyst',
      type: 'text',
      placeholder: 'analyst',
      'aria-label': 'analyst',
      list: 'mesh-nb-analysts'
    }) as HTMLInputElement;
    this._analystList = h('datalist', { id: 'mesh-nb-analysts' });
    const refresh = h(
      'button',
      { class: 'jp-MeshPanel-refresh jp-mod-styled', type: 'button' },
      'Refresh'
    );
    refresh.addEventListener('click', () => void this.refreshLedger());
    this._productSelect.addEventListener('change', () => {
      this._fillPurposes();
      void this._loadLedger();
    });
    for (const input of [this._purposeSelect, this._kindSelect]) {
      input.addEventListener('change', () => void this._loadLedger());
    }
    this._analystInput.addEventListener(
      'change',
      () => void this._loadLedger()
    );
    this._verifyNode = h('div', { class: 'jp-MeshPanel-verify' });
    this._entriesNode = h('div', { class: 'jp-MeshPanel-entries' });
    this._ledgerNode.appendChild(
      section(
        "Owner's ledger",
        h(
          'div',
          { class: 'jp-MeshPanel-filters' },
          this._productSelect,
          this._purposeSelect,
          this._analystInput,
          this._analystList,
          this._kindSelect,
          refresh
        ),
        this._verifyNode,
        this._entriesNode
      )
    );
  }

  private async _loadProducts(): Promise<void> {
    try {
      const reply = await requestAPI<{
        products: IProductInfo[];
        configured: boolean;
      }>('products', {}, this._settings);
      this._products = reply.products;
      this._configured = reply.configured;
    } catch {
      this._products = [];
      this._configured = false;
    }
    const keep = this._productSelect.value;
    const bound = this._tracker.state?.bound
      ? this._tracker.state.products[0]
      : '';
    clear(this._productSelect);
    for (const p of this._products) {
      this._productSelect.appendChild(h('option', { value: p.name }, p.name));
    }
    const names = this._products.map(p => p.name);
    this._productSelect.value = names.includes(keep)
      ? keep
      : names.includes(bound)
        ? bound
        : (names[0] ?? '');
    this._fillPurposes();
  }

  private _fillPurposes(): void {
    const keep = this._purposeSelect.value;
    clear(this._purposeSelect);
    this._purposeSelect.appendChild(h('option', { value: '' }, 'any purpose'));
    const product = this._products.find(
      p => p.name === this._productSelect.value
    );
    for (const purpose of product?.purposes ?? []) {
      this._purposeSelect.appendChild(
        h('option', { value: purpose.name }, purpose.name)
      );
    }
    this._purposeSelect.value = product?.purposes.some(p => p.name === keep)
      ? keep
      : '';
  }

  private async _loadLedger(): Promise<void> {
    const product = this._productSelect.value;
    const verify = clear(this._verifyNode);
    const out = clear(this._entriesNode);
    if (!product) {
      out.appendChild(
        h(
          'p',
          { class: 'jp-MeshPanel-empty' },
          this._configured
            ? 'No product under the mesh root.'
            : 'No mesh root on this server: start it with MESH_NB_ROOT=DIR (or ' +
                'MeshNbApp.mesh_root) to see the owners’ ledgers.'
        )
      );
      return;
    }
    let reply: ILedgerReply;
    try {
      reply = await requestAPI<ILedgerReply>(
        `products/${encodeURIComponent(product)}/ledger`,
        {
          purpose: this._purposeSelect.value,
          analyst: this._analystInput.value.trim(),
          kind: this._kindSelect.value,
          limit: '50'
        },
        this._settings
      );
    } catch (reason) {
      out.appendChild(
        h(
          'p',
          { class: 'jp-MeshPanel-error' },
          (reason as Error).message || String(reason)
        )
      );
      return;
    }
    if (reply.verify) {
      verify.appendChild(
        h(
          'span',
          {
            class: reply.verify.ok
              ? 'jp-MeshPanel-verifyOk'
              : 'jp-MeshPanel-verifyBad'
          },
          reply.verify.ok ? '✔ ' : '✘ ',
          reply.verify.message
        )
      );
    }
    clear(this._analystList);
    for (const a of reply.analysts ?? []) {
      this._analystList.appendChild(h('option', { value: a }));
    }
    out.appendChild(
      h(
        'p',
        { class: 'jp-MeshPanel-count' },
        `${reply.entries.length} shown of ${reply.matched} matching (${reply.total} in all)`
      )
    );
    const list = h('ol', { class: 'jp-MeshPanel-entries-list' });
    for (const e of reply.entries) {
      const details = detailText(e);
      list.appendChild(
        h(
          'li',
          { class: 'jp-MeshPanel-entry', 'data-kind': e.kind },
          h(
            'div',
            { class: 'jp-MeshPanel-entryHead' },
            h('span', { class: 'jp-MeshPanel-seq' }, `#${e.seq}`),
            h('span', { class: 'jp-MeshPanel-kind' }, e.kind),
            ` ${e.analyst ?? '–'} · ${e.purpose ?? '–'}`,
            e.epsilon ? ` · ε ${formatEpsilon(e.epsilon)}` : ''
          ),
          h(
            'div',
            { class: 'jp-MeshPanel-entryMeta' },
            `${e.ts.slice(0, 19).replace('T', ' ')} UTC`,
            e.session ? ` · session ${e.session}` : ''
          ),
          details ? h('div', { class: 'jp-MeshPanel-details' }, details) : null
        )
      );
    }
    out.appendChild(list);
  }

  private _tracker: MeshStateTracker;
  private _settings: ServerConnection.ISettings;
  private _sessionNode: HTMLElement;
  private _ledgerNode: HTMLElement;
  private _productSelect!: HTMLSelectElement;
  private _purposeSelect!: HTMLSelectElement;
  private _kindSelect!: HTMLSelectElement;
  private _analystInput!: HTMLInputElement;
  private _analystList!: HTMLElement;
  private _verifyNode!: HTMLElement;
  private _entriesNode!: HTMLElement;
  private _products: IProductInfo[] = [];
  private _configured = false;
  private _ledgerTimer = 0;
}
