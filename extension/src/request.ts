import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * GET a JSON endpoint of mesh_nb's server extension (`/mesh-nb/api/...`).
 *
 * Throws `ServerConnection.ResponseError` with the server's message on an error status.
 */
export async function requestAPI<T>(
  endPoint: string,
  query: Record<string, string | undefined> = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== '') {
      params.set(key, value);
    }
  }
  const search = params.toString();
  const url =
    URLExt.join(settings.baseUrl, 'mesh-nb', 'api', endPoint) +
    (search ? `?${search}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  try {
    data = text.length > 0 ? JSON.parse(text) : {};
  } catch {
    // not JSON: keep the text for the message
  }
  if (!response.ok) {
    throw new ServerConnection.ResponseError(
      response,
      (data && data.message) || String(text)
    );
  }
  return data as T;
}

/** A product as `GET /mesh-nb/api/products` lists it. */
export interface IProductInfo {
  name: string;
  owners: string[];
  domain: string;
  purposes: {
    name: string;
    description: string;
    legal_basis: string | null;
    access: string;
  }[];
  ledger: boolean;
}

/** One ledger entry (details hold only allowlisted keys: never a data value). */
export interface ILedgerEntry {
  seq: number;
  ts: string;
  kind: string;
  session: string | null;
  analyst: string | null;
  purpose: string | null;
  epsilon: number;
  delta: number;
  details: Record<string, unknown>;
}

/** The verify status of a ledger. */
export interface IVerifyStatus {
  ok: boolean;
  entries?: number;
  seq?: number | null;
  reason?: string;
  message: string;
}

/** `GET /mesh-nb/api/products/NAME/ledger`. */
export interface ILedgerReply {
  product: string;
  total: number;
  matched: number;
  entries: ILedgerEntry[];
  analysts?: string[];
  verify: IVerifyStatus | null;
}
