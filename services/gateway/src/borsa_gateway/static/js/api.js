// The API client: bearer token from sessionStorage, errors as ApiError with the field they concern.
const TOKEN_KEY = "borsa.token";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail?.message || `the server answered ${status}`);
    this.status = status;
    this.code = detail?.code || "internal";
    this.field = detail?.field || null;
  }
}

// Called on a 401 (expired or missing token): set by the router.
let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

function headers(json) {
  const out = {};
  if (session.token) out.Authorization = `Bearer ${session.token}`;
  if (json) out["Content-Type"] = "application/json";
  return out;
}

async function failure(response) {
  let detail = null;
  try {
    detail = (await response.json()).detail;
  } catch {
    // not JSON: a proxy's page or a dropped connection
  }
  if (typeof detail === "string") detail = { code: "bad_request", message: detail };
  const error = new ApiError(response.status, detail);
  if (response.status === 401 && session.token) {
    session.token = null;
    onUnauthorized(error);
  }
  return error;
}

export async function api(method, path, body) {
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, { code: "network_error", message: "Borsa is not answering; check your connection and try again." });
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") q.set(key, value);
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

// A file download that needs the bearer header: fetched, then saved through a blob URL (no token in any URL).
export async function download(path, filename) {
  const response = await fetch(`/api/v1${path}`, { headers: headers(false) });
  if (!response.ok) throw await failure(response);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
