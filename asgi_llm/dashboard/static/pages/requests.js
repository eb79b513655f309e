// The request log (GET /admin/requests, newest first, page by page) and one request's
// record with its attempts (GET /admin/requests/{id}).
import { api } from "../api.js";
import { fmt, h, mount } from "../dom.js";
import { sortableTable } from "../table.js";

const FILTERS = ["key", "tenant", "model", "deployment", "status"];

export async function render(main, ctx) {
  if (ctx.page === "request") return renderOne(main, ctx);
  const { params, go } = ctx;
  const filters = Object.fromEntries(["from", "to", ...FILTERS].map((k) => [k, params.get(k) || ""]));
  const form = h("form", { class: "inline", "data-filters": "", onsubmit: (e) => {
    e.preventDefault();
    const data = Object.fromEntries([...new FormData(e.target)].filter(([, v]) => v));
    go("requests", "", data);
  } },
  FILTERS.map((k) => h("label", {}, k, h("input", { name: k, value: filters[k], size: 12 }))),
  filters.from ? h("input", { type: "hidden", name: "from", value: filters.from }) : null,
  filters.to ? h("input", { type: "hidden", name: "to", value: filters.to }) : null,
  h("button", { type: "submit" }, "Filter"),
  h("a", { href: api.url("requests", { ...filters, format: "csv", limit: 1000 }), download: "requests.csv" }, "CSV"));
  const tbody = h("div");
  const more = h("button", { type: "button", class: "secondary hidden", "data-more": "" }, "Older");
  let rows = [];
  const columns = [
    { key: "time", label: "Time", show: (r) => fmt.time(r.time) },
    { key: "request_id", label: "Request" },
    { key: "key_id", label: "Key" },
    { key: "tenant", label: "Team" },
    { key: "model", label: "Model" },
    { key: "deployment", label: "Deployment" },
    { key: "status", label: "Status", num: true, show: (r) => h("span", { class: "badge " + (r.status >= 400 || r.status === 0 ? "bad" : "good") }, r.status) },
    { key: "cache", label: "Cache" },
    { key: "tokens", label: "Tokens", num: true, sort: (r) => r.input_tokens + r.output_tokens, show: (r) => fmt.int(r.input_tokens + r.output_tokens) },
    { key: "cost_usd", label: "Cost", num: true, show: (r) => fmt.usd(r.cost_usd) },
    { key: "latency_ms", label: "Latency", num: true, show: (r) => fmt.ms(r.latency_ms) },
  ];
  const load = async (before) => {
    const page = await api.get("requests", { ...filters, limit: 50, before });
    rows = rows.concat(page.data);
    mount(tbody, sortableTable(columns, rows, { id: "requests", onRow: (r) => go("request", r.request_id) }));
    more.classList.toggle("hidden", !page.next);
    more.onclick = () => load(page.next);
  };
  mount(main, h("h1", {}, "Requests"), form, tbody, h("p", {}, more));
  await load(undefined);
}

// One field of a record as a person reads it: times, milliseconds, dollars, token counts.
export function showValue(key, value) {
  if (value === null || value === undefined) return "–";
  if (key === "time") return fmt.time(value);
  if (key.endsWith("_ms") && typeof value === "number") return fmt.ms(value);
  if (key.endsWith("_usd")) return fmt.usd(value);
  if (key.endsWith("_tokens")) return fmt.int(value);
  if ((key === "prompt" || key === "completion") && value) return h("pre", {}, String(value));
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

async function renderOne(main, { arg }) {
  const record = await api.get("requests/" + encodeURIComponent(arg));
  const { attempt_log: attempts = [], ...fields } = record;
  const columns = Object.keys(attempts[0] || { n: 0 }).map((k) => ({ key: k, label: k, nosort: true, show: (a) => showValue(k, a[k]) }));
  mount(main,
    h("h1", {}, "Request ", h("code", {}, fields.request_id ?? arg)),
    h("table", { "data-record": "" }, Object.entries(fields).map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, showValue(k, v))))),
    h("h2", {}, "Attempts"),
    sortableTable(columns, attempts, { id: "attempts" }));
}
