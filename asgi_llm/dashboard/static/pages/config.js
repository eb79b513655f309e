// Live config: the redacted config in force, the last reload and its result, and a reload.
import { api } from "../api.js";
import { fmt, h, mount, notice } from "../dom.js";

export async function render(main, ctx) {
  const data = await api.get("config");
  const last = data.last_reload;
  const status = h("div", { "data-reload-status": "" });
  const reload = async () => {
    try {
      const result = await api.post("config/reload");
      mount(status, notice(`Reloaded from ${result.source ?? "the config"}.`));
    } catch (err) {
      mount(status, notice(`Reload refused: ${err.message} (the old config stays).`, "bad"));
    }
  };
  mount(main,
    h("div", { class: "toolbar" }, h("h1", {}, "Config"), h("button", { type: "button", "data-reload": "", onclick: reload }, "Reload")),
    status,
    h("p", {}, "Source: ", h("code", {}, data.source ?? "(built in)")),
    h("p", { "data-last-reload": "" }, last
      ? [`Last reload ${fmt.time(last.at)}: `, h("span", { class: "badge " + (last.ok ? "good" : "bad") }, last.ok ? "ok" : "failed"), last.error ? ` ${last.error}` : ""]
      : "No reload since start."),
    h("pre", { "data-config": "" }, JSON.stringify(data.config, null, 2)));
}
