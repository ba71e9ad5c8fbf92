/** The status bar item: `customers · churn-analysis · ε 2.1 of 3.0 left` or `mesh: not bound`. */
import { Widget } from '@lumino/widgets';

import { MeshStateTracker } from './tracker';
import { IMeshState, statusText, tightestBudget } from './types';

export class MeshStatus extends Widget {
  constructor(tracker: MeshStateTracker, onClick: () => void) {
    super({ node: document.createElement('div') });
    this.addClass('jp-MeshStatus');
    this.node.setAttribute('role', 'button');
    this.node.setAttribute('tabindex', '0');
    this.node.addEventListener('click', onClick);
    this.node.addEventListener('keydown', (event: KeyboardEvent) => {
      if (event.key === 'Enter' || event.key === ' ') {
        onClick();
      }
    });
    tracker.changed.connect((_, state) => this.update_(state));
    this.update_(tracker.state);
  }

  private update_(state: IMeshState | null): void {
    this.node.textContent = statusText(state);
    this.toggleClass('jp-mod-bound', !!state?.bound);
    const budget = state?.bound ? tightestBudget(state) : null;
    const low =
      budget !== null &&
      budget.epsilon_total !== null &&
      budget.epsilon_remaining !== null &&
      budget.epsilon_remaining < 0.2 * budget.epsilon_total;
    this.toggleClass('jp-mod-low', low);
    this.node.title = state?.bound
      ? `${state.analyst} bound to purpose ${state.purpose} (${state.access}) — ` +
        'click for the Mesh panel'
      : state === null
        ? 'mesh_nb is not loaded in this kernel (%load_ext mesh_nb) — click for the Mesh panel'
        : 'no purpose bound (%mesh_bind) — click for the Mesh panel';
  }
}
