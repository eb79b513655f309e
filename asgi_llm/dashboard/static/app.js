// The dashboard's router: #/<page>/<arg>?<params> picks a page module, which draws itself
// into <main> from the admin API's JSON. Nothing here runs inline (the CSP forbids it).
import { api } from "./api.js";
import { h, mount } from "./dom.js";
import * as overview from "./pages/overview.js";
import * as usage from "./pages/usage.js";
import * as deployments from "./pages/deployments.js";
import * as requests from "./pages/requests.js";
import * as config from "./pages/config.js";
import * as teams from "./pages/teams.js";
import * as keys from "./pages/keys.js";

const PAGES = { overview, usage, deployments, requests, request: requests, config, teams, keys };
const main = document.getElementById("main");
let session = null;

export function route() {
  const [path, search] = (window.location.hash.slice(1) || "/overview").split("?");
  const [, page, ...rest] = path.split("/");
  return { page: page || "overview", arg: rest.map(decodeURIComponent).join("/"), params: new URLSearchParams(search || "") };
}

export function go(page, arg, params) {
  const q = params ? new URLSearchParams(params).toString() : "";
  window.location.hash = `#/${page}${arg ? "/" + encodeURIComponent(arg) : ""}${q ? "?" + q : ""}`;
}

async function show() {
  const where = route();
  const module = PAGES[where.page];
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.getAttribute("href").slice(2).split("?")[0] === [where.page, where.arg].filter(Boolean).join("/"));
  }
  if (!module) {
    mount(main, h("p", { class: "error" }, "No such page."));
    return;
  }
  mount(main, h("p", { class: "muted" }, "Loading…"));
  try {
    await module.render(main, { ...where, session, go });
  } catch (err) {
    mount(main, h("h1", {}, "Could not load this page"), h("p", { class: "error", "data-error": err.status || "" }, err.message));
  }
  main.setAttribute("data-page", where.page);
}

async function start() {
  session = await api.session();
  document.getElementById("who").textContent =
    `${session.principal}${session.tenant ? " · tenant " + session.tenant : " · all tenants"}`;
  document.getElementById("signout").addEventListener("click", async () => {
    await api.signOut();
    window.location.assign(api.signInPage());
  });
  window.addEventListener("hashchange", show);
  await show();
}

start();
