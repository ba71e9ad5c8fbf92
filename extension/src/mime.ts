/**
 * A renderer for `application/vnd.mesh-nb.release+json`: a released table whose every noisy
 * value shows `± half-width` of its 95% interval, with what the release spent, for which
 * purpose, and its notes.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { RELEASE_MIME, formatEpsilon } from './types';

/** The release bundle (see mesh_nb/lab/mime.py). */
export interface IReleaseBundle {
  version: number;
  release_id: string;
  products: string[];
  purpose: string;
  sql: string;
  epsilon: number;
  delta: number;
  cached: boolean;
  remaining: Record<string, number | null>;
  columns: {
    name: string;
    dtype: string;
    noisy: boolean;
    mechanism?: string | null;
    func?: string | null;
  }[];
  rows: unknown[][];
  half_widths: Record<string, (number | null)[]>;
  notes: string[];
  row_count: number;
  truncated: boolean;
}

function formatValue(value: unknown, dtype: string): string {
  if (value === null || value === undefined) {
    return '–';
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value) && !dtype.startsWith('float')) {
      return value.toLocaleString('en-US');
    }
    return value.toLocaleString('en-US', {
      minimumFractionDigits: 2,
      maximumFractionDigits: 2
    });
  }
  if (typeof value === 'object') {
    return JSON.stringify(value);
  }
  return String(value);
}

/** Render a release bundle into a DOM node. */
export function renderRelease(bundle: IReleaseBundle): HTMLElement {
  const spent = bundle.cached
    ? 'no new cost (same query released before)'
    : `ε ${formatEpsilon(bundle.epsilon)}` +
      (bundle.delta ? `, δ ${bundle.delta.toExponential(1)}` : '');
  const left = Object.entries(bundle.remaining || {})
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ε ${formatEpsilon(v as number)}`)
    .join(', ');
  const head = h(
    'thead',
    {},
    h(
      'tr',
      {},
      ...bundle.columns.map(c =>
        h(
          'th',
          {
            class: c.noisy ? 'jp-MeshRelease-noisy' : 'jp-MeshRelease-key',
            title: c.noisy
              ? `${c.func ?? ''} · ${c.mechanism ?? ''}`
              : 'group key'
          },
          c.name
        )
      )
    )
  );
  const body = h('tbody', {});
  bundle.rows.forEach((row, i) => {
    body.appendChild(
      h(
        'tr',
        {},
        ...bundle.columns.map((c, j) => {
          const hw = bundle.half_widths[c.name]?.[i];
          return h(
            'td',
            { class: c.noisy ? 'jp-MeshRelease-noisy' : 'jp-MeshRelease-key' },
            formatValue(row[j], c.dtype),
            hw !== null && hw !== undefined
              ? h(
                  'span',
                  { class: 'jp-MeshRelease-hw' },
                  ` ± ${formatValue(hw, 'float')}`
                )
              : null
          );
        })
      )
    );
  });
  const mechanisms = Array.from(
    new Set(
      bundle.columns
        .filter(c => c.noisy && c.mechanism)
        .flatMap(c => (c.mechanism as string).split(', '))
    )
  ).sort();
  return h(
    'div',
    { class: 'jp-MeshRelease', 'data-release': bundle.release_id },
    h(
      'div',
      { class: 'jp-MeshRelease-title' },
      `mesh_nb release · ${bundle.products.join(', ')}`
    ),
    h(
      'div',
      { class: 'jp-MeshRelease-subtitle' },
      `purpose ${bundle.purpose} · spent ${spent}` +
        (left ? ` · left: ${left}` : '')
    ),
    h('table', { class: 'jp-MeshRelease-table' }, head, body),
    bundle.truncated
      ? h(
          'div',
          { class: 'jp-MeshRelease-note' },
          `first ${bundle.rows.length} of ${bundle.row_count} rows shown`
        )
      : null,
    h(
      'div',
      { class: 'jp-MeshRelease-note' },
      `Differentially private (${mechanisms.join(', ') || 'noise'}); ± is the 95% ` +
        'interval half-width of the noise. Counts are rounded and clamped at 0.'
    ),
    ...bundle.notes.map(n => h('div', { class: 'jp-MeshRelease-note' }, n)),
    h(
      'details',
      { class: 'jp-MeshRelease-sql' },
      h('summary', {}, `query ${bundle.release_id}`),
      h('pre', {}, bundle.sql)
    )
  );
}

/** The renderer widget. */
export class ReleaseRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(options: IRenderMime.IRendererOptions) {
    super();
    this._mimeType = options.mimeType;
    this.addClass('jp-MeshReleaseRenderer');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const bundle = model.data[this._mimeType] as unknown as IReleaseBundle;
    while (this.node.firstChild) {
      this.node.removeChild(this.node.firstChild);
    }
    this.node.appendChild(renderRelease(bundle));
    return Promise.resolve();
  }

  private _mimeType: string;
}

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [RELEASE_MIME],
  createRenderer: options => new ReleaseRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'mesh-nb:release-renderer',
  description: 'Renders mesh_nb releases with their privacy annotations.',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
