// Teams (tenants): create, edit budget, period, limits and models, delete. Every change goes
// through the admin API (POST/PATCH/DELETE /admin/teams), which audits it.
import { api } from "../api.js";
import { fmt, h, mount, notice } from "../dom.js";
import { field, formBody } from "../forms.js";
import { sortableTable } from "../table.js";

const NUMBERS = ["budget_usd", "rpm", "tpm"];

// When the current budget period began (UTC): the day, the week (from Monday), the month.
export function periodStart(period, now = new Date()) {
  const day = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  if (period === "day") return day / 1000;
  if (period === "week") return (day - ((now.getUTCDay() + 6) % 7) * 86400000) / 1000;
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1) / 1000;
}

// Each team's spend in its current budget period, from the ledger (none without one): the
// history, beside what the limiter's budget counters hold (`spent_usd`, from the teams API).
async function spentThisPeriod(teams) {
  const periods = [...new Set(teams.map((t) => t.budget_period || "month"))];
  const spent = new Map();
  await Promise.all(periods.map(async (period) => {
    const { data } = await api.get("usage", { group_by: "tenant", from: periodStart(period) });
    for (const row of data) spent.set(`${period}/${row.group}`, row.cost_usd);
  }));
  return new Map(teams.map((t) => [t.id, spent.get(`${t.budget_period || "month"}/${t.id}`) ?? 0]));
}

export async function render(main, ctx) {
  const { data } = await api.all("teams");
  const spent = await spentThisPeriod(data).catch(() => new Map());
  const status = h("div", { "data-status": "" });
  const done = (text) => { mount(status, notice(text)); };
  const failed = (err) => { mount(status, notice(err.message, "bad")); };
  const editor = h("div");
  const edit = (team) => {
    const form = h("form", { class: "inline card", "data-edit-team": team.id, onsubmit: async (e) => {
      e.preventDefault();
      try {
        await api.patch("teams/" + encodeURIComponent(team.id), formBody(e.target, { numbers: NUMBERS, lists: ["models"] }));
        await render(main, ctx);
        main.querySelector("[data-status]").replaceChildren(notice(`Team ${team.id} updated.`));
      } catch (err) { failed(err); }
    } },
    h("strong", {}, `Edit ${team.id}`),
    field("budget_usd", "Budget (USD)", { value: team.budget_usd ?? "", type: "number", step: "any", min: 0 }),
    periodSelect(team.budget_period),
    field("rpm", "Requests/min", { value: team.rpm ?? "", type: "number", min: 0 }),
    field("tpm", "Tokens/min", { value: team.tpm ?? "", type: "number", min: 0 }),
    field("models", "Models (comma separated)", { value: (team.models || []).join(", ") }),
    h("button", { type: "submit" }, "Save"),
    h("button", { type: "button", class: "danger", "data-delete-team": team.id, onclick: async () => {
      if (!window.confirm(`Delete team ${team.id}?`)) return;
      try { await api.del("teams/" + encodeURIComponent(team.id)); await render(main, ctx); } catch (err) { failed(err); }
    } }, "Delete"));
    mount(editor, form);
  };
  const create = h("form", { class: "inline card", "data-create-team": "", onsubmit: async (e) => {
    e.preventDefault();
    try {
      const body = formBody(e.target, { numbers: NUMBERS, lists: ["models"] });
      await api.post("teams", body);
      await render(main, ctx);
      main.querySelector("[data-status]").replaceChildren(notice(`Team ${body.id} created.`));
    } catch (err) { failed(err); }
  } },
  h("strong", {}, "New team"),
  field("id", "Id", { required: true, pattern: "[A-Za-z0-9_.:\\-]+" }),
  field("budget_usd", "Budget (USD)", { type: "number", step: "any", min: 0 }),
  periodSelect("month"),
  field("rpm", "Requests/min", { type: "number", min: 0 }),
  field("tpm", "Tokens/min", { type: "number", min: 0 }),
  field("models", "Models (comma separated)"),
  h("button", { type: "submit" }, "Create"));
  const columns = [
    { key: "id", label: "Team" },
    { key: "budget_usd", label: "Budget", num: true, show: (t) => (t.budget_usd === null || t.budget_usd === undefined ? "–" : fmt.usd(t.budget_usd)) },
    { key: "budget_period", label: "Period" },
    { key: "spent", label: "Spent this period (ledger)", num: true, sort: (t) => spent.get(t.id) ?? -1, show: (t) => (spent.has(t.id) ? fmt.usd(spent.get(t.id)) : "–") },
    // what the budget check itself counts (the limiter's counters), when the API says
    { key: "spent_usd", label: "Counted by the budget check", num: true, show: (t) => (t.spent_usd === undefined || t.spent_usd === null ? "–" : fmt.usd(t.spent_usd)) },
    { key: "rpm", label: "RPM", num: true },
    { key: "tpm", label: "TPM", num: true },
    { key: "models", label: "Models", show: (t) => (t.models && t.models.length ? t.models.join(", ") : "all") },
  ];
  mount(main, h("h1", {}, "Teams"), status, ctx.session?.tenant ? null : create, editor,
    sortableTable(columns, data, { id: "teams", sortBy: "id", desc: false, onRow: edit }));
}

function periodSelect(current) {
  return h("label", {}, "Period", h("select", { name: "budget_period" },
    ["day", "week", "month"].map((p) => h("option", { value: p, selected: p === (current || "month") }, p))));
}
