// The console's only way to the server: the public admin API (the same one the CLI calls), with
// the session cookie instead of a bearer token and the session's CSRF token on every write.

export const BASE = "/mtls-edge-truststore/v2";
export const EDGE = "/edge/v1";
const RANK = { viewer: 0, editor: 1, admin: 2 };

export const session = { name: null, role: null, csrfToken: null, csrfHeader: "X-CSRF-Token" };

export class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || body.title || `HTTP ${status}`);
    Object.assign(this, body);
    this.status = status;
    this.slug = (body.type || "").split("/").pop();
  }
  // The problem's errors that point at one entry of a request's array, by index.
  at(prefix) {
    const found = new Map();
    for (const e of this.errors || []) {
      const match = (e.pointer || "").match(new RegExp(`^${prefix}/(\\d+)`));
      if (!match) continue;
      const index = Number(match[1]);
      found.set(index, [...(found.get(index) || []), e]);
    }
    return found;
  }
}

export function can(role) {
  return session.role !== null && RANK[session.role] >= RANK[role];
}

let onSignedOut = () => {};
export function whenSignedOut(callback) { onSignedOut = callback; }

export async function call(method, path, body, { base = BASE } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!["GET", "HEAD"].includes(method) && session.csrfToken) {
    headers[session.csrfHeader] = session.csrfToken;
  }
  let response;
  try {
    response = await fetch(base + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    throw new ApiError(0, { title: "Cannot reach the admin API", detail: String(error.message || error) });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { title: `HTTP ${response.status}`, detail: text.slice(0, 200) }; }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data || { title: `HTTP ${response.status}` });
    if (response.status === 401 && base !== "/console") {
      clearSession();
      onSignedOut(error);
    }
    throw error;
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body === undefined ? {} : body);
export const put = (path, body) => call("PUT", path, body);
export const del = (path) => call("DELETE", path);
// The edge certificates' API, beside the truststore's.
export const edge = {
  get: (path) => call("GET", path, undefined, { base: EDGE }),
  post: (path, body) => call("POST", path, body, { base: EDGE }),
  put: (path, body) => call("PUT", path, body, { base: EDGE }),
  patch: (path, body) => call("PATCH", path, body, { base: EDGE }),
  del: (path) => call("DELETE", path, undefined, { base: EDGE }),
};

function clearSession() {
  Object.assign(session, { name: null, role: null, csrfToken: null });
}

function keep(body) {
  Object.assign(session, {
    name: body.name, role: body.role, csrfToken: body.csrfToken, csrfHeader: body.csrfHeader,
  });
  return body;
}

export async function resume() {
  try {
    return keep(await call("GET", "/session", undefined, { base: "/console" }));
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

export async function signIn(token) {
  return keep(await call("POST", "/session", { token }, { base: "/console" }));
}

export async function signOut() {
  try {
    await call("DELETE", "/session", undefined, { base: "/console" });
  } finally {
    clearSession();
  }
}
