// Deployments: live state of this process (GET /admin/deployments: cooldowns, in-flight,
// the router's latency estimate, degraded backends) beside the ledger's figures of the range.
import { api } from "../api.js";
import { fmt, h, mount, notice } from "../dom.js";
import { currentRange } from "../range.js";
import { sortableTable } from "../table.js";

export async function render(main, { go, params }) {
  const range = currentRange(params);
  const [live, ledger] = await Promise.all([
    api.get("deployments"),
    api.get("usage", { group_by: "deployment", from: range.from, to: range.to }).catch(() => ({ data: [] })),
  ]);
  const byId = new Map(ledger.data.map((r) => [r.group, r]));
  const rows = live.data.map((d) => ({ ...d, ...(byId.get(d.id) ? { ledger: byId.get(d.id) } : {}) }));
  const state = (d) => (d.cooling ? h("span", { class: "badge bad" }, `cooling ${Math.ceil(d.cooldown_s)} s`) : h("span", { class: "badge good" }, "healthy"));
  const columns = [
    { key: "id", label: "Deployment" },
    { key: "model", label: "Model" },
    { key: "provider", label: "Provider" },
    { key: "cooling", label: "State", sort: (d) => (d.cooling ? 1 : 0), show: state },
    { key: "in_flight", label: "In flight", num: true },
    { key: "latency_ewma_ms", label: "Latency now", num: true, show: (d) => fmt.ms(d.latency_ewma_ms) },
    { key: "requests", label: "Requests", num: true, sort: (d) => d.ledger?.requests ?? 0, show: (d) => fmt.int(d.ledger?.requests) },
    { key: "errors", label: "Error rate", num: true, sort: (d) => (d.ledger?.requests ? d.ledger.errors / d.ledger.requests : 0), show: (d) => fmt.pct(d.ledger?.requests ? d.ledger.errors / d.ledger.requests : NaN) },
    { key: "latency", label: "Latency (avg)", num: true, sort: (d) => d.ledger?.latency_ms_avg ?? 0, show: (d) => fmt.ms(d.ledger?.latency_ms_avg) },
    { key: "cost", label: "Spend", num: true, sort: (d) => d.ledger?.cost_usd ?? 0, show: (d) => fmt.usd(d.ledger?.cost_usd) },
  ];
  const degraded = Object.entries(live.degraded || {}).filter(([, down]) => down).map(([name]) => name);
  mount(main,
    h("h1", {}, "Deployments"),
    h("p", { class: "muted" }, `In flight in this process: ${live.in_flight ?? "–"}. Ledger figures: last ${range.name}.`),
    degraded.length ? notice(`Degraded backends (running on their fallback): ${degraded.join(", ")}`, "warn") : null,
    sortableTable(columns, rows, { id: "deployments", onRow: (d) => go("requests", "", { deployment: d.id }) }));
}
