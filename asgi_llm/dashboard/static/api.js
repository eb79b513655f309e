// The dashboard's only way to the server: <ui>/api/<admin path>, with the session cookie
// (sent by the browser, HttpOnly) and, on every change, the CSRF token echoed in a header.

const API = new URL("../api/", import.meta.url);
const ROOT = new URL("../", import.meta.url);

function csrfToken() {
  const found = document.cookie.split("; ").find((c) => c.startsWith("asgi_llm_ui_csrf="));
  return found ? found.slice("asgi_llm_ui_csrf=".length) : "";
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

async function call(method, url, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-csrf-token"] = csrfToken();
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin", cache: "no-store",
  });
  if (response.status === 401) {
    window.location.assign(new URL("signin", ROOT));
    throw new ApiError(401, null);
  }
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

export const api = {
  get: (path, params) => call("GET", new URL(path + query(params), API)),
  // Every page of a paged listing (keys, teams: `{data, next}`), followed by `next`.
  all: async (path, params) => {
    let rows = [], after;
    do {
      const page = await call("GET", new URL(path + query({ ...params, limit: 1000, after }), API));
      rows = rows.concat(page.data);
      after = page.next;
    } while (after);
    return { data: rows };
  },
  post: (path, body) => call("POST", new URL(path, API), body ?? {}),
  patch: (path, body) => call("PATCH", new URL(path, API), body ?? {}),
  del: (path) => call("DELETE", new URL(path, API)),
  url: (path, params) => new URL(path + query(params), API).toString(),
  session: () => call("GET", new URL("session", ROOT)),
  signOut: () => call("POST", new URL("signout", ROOT)),
  signInPage: () => new URL("signin", ROOT).toString(),
};
