// By team, key or model: GET /admin/usage?group_by=..., sortable, with a sparkline per row;
// a row opens the request log filtered to it.
import { api } from "../api.js";
import { sparkline } from "../chart.js";
import { fmt, h, mount } from "../dom.js";
import { currentRange, rangePicker } from "../range.js";
import { sortableTable } from "../table.js";

const TITLES = { tenant: "Teams", key: "Keys", model: "Models", deployment: "Deployments" };
const SPARKS = 20; // rows that get a sparkline (one query each)

export async function render(main, { arg, params, go }) {
  const by = TITLES[arg] ? arg : "tenant";
  const range = currentRange(params);
  const { data } = await api.get("usage", { group_by: by, from: range.from, to: range.to });
  const top = [...data].sort((a, b) => b.cost_usd - a.cost_usd || b.requests - a.requests).slice(0, SPARKS);
  const trends = new Map(await Promise.all(top.map(async (row) => {
    const filter = { group_by: range.bucket, from: range.from, to: range.to, [by]: row.group };
    const { data: points } = await api.get("usage", filter);
    points.sort((a, b) => String(a.group).localeCompare(String(b.group)));
    return [row.group, points.map((p) => p.requests)];
  })));
  const columns = [
    { key: "group", label: TITLES[by].replace(/s$/, ""), show: (r) => r.group ?? "(none)" },
    { key: "requests", label: "Requests", num: true, show: (r) => fmt.int(r.requests) },
    { key: "tokens", label: "Tokens", num: true, sort: (r) => r.input_tokens + r.output_tokens, show: (r) => fmt.int(r.input_tokens + r.output_tokens) },
    { key: "cost_usd", label: "Spend", num: true, show: (r) => fmt.usd(r.cost_usd) },
    { key: "error_rate", label: "Errors", num: true, sort: (r) => (r.requests ? r.errors / r.requests : 0), show: (r) => fmt.pct(r.requests ? r.errors / r.requests : NaN) },
    { key: "hit_rate", label: "Cache hits", num: true, sort: (r) => (r.requests ? r.cache_hits / r.requests : 0), show: (r) => fmt.pct(r.requests ? r.cache_hits / r.requests : NaN) },
    { key: "saved_usd", label: "Saved", num: true, show: (r) => fmt.usd(r.saved_usd) },
    { key: "latency_ms_avg", label: "Latency (avg)", num: true, show: (r) => fmt.ms(r.latency_ms_avg) },
    { key: "trend", label: "Trend", nosort: true, show: (r) => (trends.has(r.group) ? sparkline(trends.get(r.group)) : "") },
  ];
  mount(main,
    h("div", { class: "toolbar" }, h("h1", {}, `${TITLES[by]} by spend`), rangePicker(params, (name) => go("usage", by, { range: name }))),
    sortableTable(columns, data, {
      id: "usage", sortBy: "cost_usd",
      onRow: (row) => go("requests", "", { [by]: row.group ?? "", from: range.from, to: range.to }),
    }));
}
