/**
 * mesh_nb's JupyterLab extension: a status bar item for the current notebook's kernel (its
 * binding and remaining budget), the "Mesh" side panel, and a command to open it. The status
 * bar and the command palette are optional, so Notebook 7 gets the panel too.
 */
import {
  ILabShell,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { Signal } from '@lumino/signaling';

// The panel and the status item are created at activation: no lazy import would help.
/* eslint-disable jupyter/prefer-lazy-imports */
import { MeshPanel, meshIcon } from './panel';
import { MeshStatus } from './statusbar';
import { MeshStateTracker } from './tracker';
/* eslint-enable jupyter/prefer-lazy-imports */

export { MeshStateTracker, KernelMeshState } from './tracker';
export * from './types';

const OPEN_PANEL = 'mesh-nb:open-panel';
const REFRESH = 'mesh-nb:refresh';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'mesh-nb:plugin',
  description:
    'mesh_nb: the bound purpose and privacy budget in the status bar, and the Mesh panel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar, ICommandPalette, ILabShell],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    statusBar: IStatusBar | null,
    palette: ICommandPalette | null,
    labShell: ILabShell | null
  ) => {
    const tracker = new MeshStateTracker(notebooks);
    const panel = new MeshPanel(tracker, app.serviceManager.serverSettings);
    panel.title.label = labShell ? '' : 'Mesh';
    app.shell.add(panel, 'right', { rank: 600 });

    app.commands.addCommand(OPEN_PANEL, {
      label: 'Show the Mesh panel',
      caption:
        'The binding, budget, releases, PII alerts and the owners’ ledger',
      icon: meshIcon,
      describedBy: { args: { type: 'object', properties: {} } },
      execute: () => {
        app.shell.activateById(panel.id);
      }
    });
    app.commands.addCommand(REFRESH, {
      label: 'Refresh the mesh state',
      describedBy: { args: { type: 'object', properties: {} } },
      execute: async () => {
        tracker.refresh();
        await panel.refreshLedger();
      }
    });
    if (palette) {
      palette.addItem({ command: OPEN_PANEL, category: 'Mesh' });
      palette.addItem({ command: REFRESH, category: 'Mesh' });
    }
    if (statusBar) {
      const item = new MeshStatus(tracker, () => {
        void app.commands.execute(OPEN_PANEL);
      });
      item.id = 'mesh-nb-status';
      const activeChanged = new Signal<MeshStateTracker, void>(tracker);
      notebooks.currentChanged.connect(() => activeChanged.emit());
      statusBar.registerStatusItem('mesh-nb:status', {
        item,
        align: 'left',
        rank: 4,
        isActive: () => notebooks.currentWidget !== null,
        activeStateChanged: activeChanged
      });
    }
    console.log('JupyterLab extension mesh-nb is activated');
  }
};

export default plugin;
