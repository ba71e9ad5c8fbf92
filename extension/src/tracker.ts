/**
 * Per-notebook mesh state, kept current over the kernel's `mesh_nb` comm.
 *
 * The kernel opens the comm when mesh_nb loads; this side registers the comm target on every
 * kernel connection. After a page reload the comm is already open: the watcher finds it with
 * `comm_info_request`, re-attaches to it by id and asks for the state. A kernel restart ends
 * the comm and clears the state.
 */
import { ISessionContext } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { COMM_TARGET, IMeshState, isState } from './types';

/** The mesh state of one notebook's kernel. */
export class KernelMeshState implements IDisposable {
  constructor(sessionContext: ISessionContext) {
    this._sessionContext = sessionContext;
    sessionContext.kernelChanged.connect(this._onKernelChanged, this);
    this._attach(sessionContext.session?.kernel ?? null);
  }

  /** The latest state, or null when mesh_nb is not loaded in the kernel (or no kernel). */
  get state(): IMeshState | null {
    return this._state;
  }

  /** Emits each new state (null when the kernel restarts or changes). */
  get changed(): ISignal<this, IMeshState | null> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Ask the kernel for the state again on every open comm. */
  refresh(): void {
    for (const comm of this._comms.values()) {
      if (!comm.isDisposed) {
        comm.send({ type: 'request_state' });
      }
    }
    if (this._comms.size === 0 && this._kernel) {
      void this._reattach(this._kernel);
    }
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._sessionContext.kernelChanged.disconnect(this._onKernelChanged, this);
    this._detach();
    Signal.clearData(this);
  }

  private _onKernelChanged(
    _: ISessionContext,
    args: { newValue: Kernel.IKernelConnection | null }
  ): void {
    this._detach();
    this._setState(null);
    this._attach(args.newValue);
  }

  private _attach(kernel: Kernel.IKernelConnection | null): void {
    this._kernel = kernel;
    if (!kernel || kernel.isDisposed) {
      return;
    }
    kernel.registerCommTarget(COMM_TARGET, this._onCommOpen);
    kernel.statusChanged.connect(this._onStatus, this);
    kernel.connectionStatusChanged.connect(this._onConnection, this);
    if (kernel.connectionStatus === 'connected') {
      void this._reattach(kernel);
    }
  }

  private _detach(): void {
    const kernel = this._kernel;
    this._kernel = null;
    this._comms.clear();
    if (!kernel || kernel.isDisposed) {
      return;
    }
    kernel.removeCommTarget(COMM_TARGET, this._onCommOpen);
    kernel.statusChanged.disconnect(this._onStatus, this);
    kernel.connectionStatusChanged.disconnect(this._onConnection, this);
  }

  private _onStatus(
    kernel: Kernel.IKernelConnection,
    status: Kernel.Status
  ): void {
    if (
      status === 'restarting' ||
      status === 'autorestarting' ||
      status === 'dead'
    ) {
      this._comms.clear();
      this._setState(null);
    }
  }

  private _onConnection(
    kernel: Kernel.IKernelConnection,
    status: Kernel.ConnectionStatus
  ): void {
    if (status === 'connected') {
      void this._reattach(kernel);
    }
  }

  /** Find comms the kernel already has open (after a reload) and ask them for the state. */
  private async _reattach(kernel: Kernel.IKernelConnection): Promise<void> {
    let reply: KernelMessage.ICommInfoReplyMsg;
    try {
      reply = await kernel.requestCommInfo({ target_name: COMM_TARGET });
    } catch {
      return; // kernel not ready or gone; a later connection change retries
    }
    if (kernel !== this._kernel || reply.content.status !== 'ok') {
      return;
    }
    for (const [id, info] of Object.entries(reply.content.comms)) {
      if (info.target_name !== COMM_TARGET || kernel.hasComm(id)) {
        continue;
      }
      const comm = kernel.createComm(COMM_TARGET, id);
      this._wire(comm);
      comm.send({ type: 'request_state' });
    }
  }

  private _onCommOpen = (
    comm: Kernel.IComm,
    msg: KernelMessage.ICommOpenMsg
  ): void => {
    this._wire(comm);
    this._handle(msg.content.data);
  };

  private _wire(comm: Kernel.IComm): void {
    this._comms.set(comm.commId, comm);
    comm.onMsg = (msg: KernelMessage.ICommMsgMsg) => {
      this._handle(msg.content.data);
    };
    comm.onClose = () => {
      // the kernel closed it (%unload_ext mesh_nb): nothing is bound any more
      this._comms.delete(comm.commId);
      if (this._comms.size === 0) {
        this._setState(null);
      }
    };
  }

  private _handle(data: unknown): void {
    if (isState(data)) {
      this._setState(data);
    }
  }

  private _setState(state: IMeshState | null): void {
    if (state === this._state) {
      return;
    }
    this._state = state;
    this._changed.emit(state);
  }

  private _sessionContext: ISessionContext;
  private _kernel: Kernel.IKernelConnection | null = null;
  private _comms = new Map<string, Kernel.IComm>();
  private _state: IMeshState | null = null;
  private _changed = new Signal<this, IMeshState | null>(this);
  private _isDisposed = false;
}

/** The mesh state of the current notebook, across all open notebooks. */
export class MeshStateTracker implements IDisposable {
  constructor(notebooks: INotebookTracker) {
    this._notebooks = notebooks;
    notebooks.widgetAdded.connect(this._onAdded, this);
    notebooks.currentChanged.connect(this._onCurrent, this);
    notebooks.forEach(panel => this._onAdded(notebooks, panel));
    this._onCurrent();
  }

  /** The state of the current notebook's kernel (null: not loaded, or no notebook). */
  get state(): IMeshState | null {
    return this._current?.state ?? null;
  }

  /** The current notebook, if any. */
  get panel(): NotebookPanel | null {
    return this._notebooks.currentWidget;
  }

  /** Emits when the current notebook changes or its state does. */
  get changed(): ISignal<this, IMeshState | null> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /** Ask the current kernel for its state again. */
  refresh(): void {
    this._current?.refresh();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    for (const watcher of this._watchers.values()) {
      watcher.dispose();
    }
    this._watchers.clear();
    Signal.clearData(this);
  }

  private _onAdded(_: INotebookTracker, panel: NotebookPanel): void {
    if (this._watchers.has(panel)) {
      return;
    }
    const watcher = new KernelMeshState(panel.sessionContext);
    this._watchers.set(panel, watcher);
    watcher.changed.connect(() => {
      if (this._notebooks.currentWidget === panel) {
        this._changed.emit(watcher.state);
      }
    });
    panel.disposed.connect(() => {
      watcher.dispose();
      this._watchers.delete(panel);
      this._onCurrent();
    });
  }

  private _onCurrent(): void {
    const panel = this._notebooks.currentWidget;
    this._current = panel ? (this._watchers.get(panel) ?? null) : null;
    this._changed.emit(this.state);
  }

  private _notebooks: INotebookTracker;
  private _watchers = new Map<NotebookPanel, KernelMeshState>();
  private _current: KernelMeshState | null = null;
  private _changed = new Signal<this, IMeshState | null>(this);
  private _isDisposed = false;
}
