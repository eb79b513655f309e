// Keys: list, mint (the key is shown once, here, and never again), rotate, revoke. Every
// change goes through the admin API, which audits it.
import { api } from "../api.js";
import { fmt, h, mount, notice } from "../dom.js";
import { field, formBody } from "../forms.js";
import { sortableTable } from "../table.js";

export async function render(main, ctx) {
  const { data } = await api.all("keys");
  const status = h("div", { "data-status": "" });
  const failed = (err) => mount(status, notice(err.message, "bad"));
  const act = async (call, after) => {
    try { const result = await call(); await render(main, ctx); after(result, main.querySelector("[data-status]")); } catch (err) { failed(err); }
  };
  const tenant = ctx.session?.tenant;
  const mint = h("form", { class: "inline card", "data-mint": "", onsubmit: (e) => {
    e.preventDefault();
    const body = formBody(e.target, { numbers: ["budget_usd"], lists: ["roles"] });
    if (body.expires_at) body.expires_at = Date.parse(body.expires_at) / 1000;
    act(() => api.post("keys", body), (result, slot) => {
      slot.replaceChildren(shownOnce(result.id, result.key));
    });
  } },
  h("strong", {}, "Mint a key"),
  field("id", "Id", { required: true }),
  field("roles", "Roles (comma separated)", { required: true }),
  tenant ? null : field("tenant", "Team"),
  field("budget_usd", "Budget (USD)", { type: "number", step: "any", min: 0 }),
  field("expires_at", "Expires", { type: "datetime-local" }),
  h("button", { type: "submit" }, "Mint"));
  const columns = [
    { key: "id", label: "Key" },
    { key: "tenant", label: "Team" },
    { key: "roles", label: "Roles", show: (k) => (k.roles || []).join(", ") },
    { key: "expires_at", label: "Expires", show: (k) => fmt.time(k.expires_at) },
    { key: "budget_usd", label: "Budget", num: true, show: (k) => (k.budget_usd === null || k.budget_usd === undefined ? "–" : fmt.usd(k.budget_usd)) },
    { key: "actions", label: "", nosort: true, show: (k) => [
      h("button", { type: "button", class: "secondary", "data-rotate": k.id, onclick: (e) => {
        e.stopPropagation();
        act(() => api.post(`keys/${encodeURIComponent(k.id)}/rotate`), (result, slot) => {
          slot.replaceChildren(shownOnce(k.id, result.key));
        });
      } }, "Rotate"), " ",
      h("button", { type: "button", class: "danger", "data-revoke": k.id, onclick: (e) => {
        e.stopPropagation();
        if (!window.confirm(`Revoke ${k.id}? Calls with it fail from now on.`)) return;
        act(() => api.post("keys/revoke", { id: k.id }), (_, slot) => slot.replaceChildren(notice(`Key ${k.id} revoked.`)));
      } }, "Revoke")] },
  ];
  mount(main, h("h1", {}, "Keys"), status, mint,
    sortableTable(columns, data, { id: "keys", sortBy: "id", desc: false, onRow: (k) => ctx.go("requests", "", { key: k.id }) }));
}

// The clear key, as the API answered it once: on the page until the next render, never stored.
function shownOnce(id, key) {
  return h("div", { class: "card" }, h("p", {}, `Key for ${id} (shown once; copy it now):`),
    h("div", { class: "secret", "data-new-key": id }, key));
}
