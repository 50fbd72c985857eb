// API keys: the exchange's own credential fields, its mode choice and what to know about it; the list of keys.
import { del, get, post } from "../api.js";
import { announce, badge, clear, clearErrors, dec, field, h, pageHeading, pct, showAlert, showError } from "../dom.js";
import { paperBalances } from "../balances.js";
import { confirmDialog } from "../dialog.js";
import { exchanges as loadExchanges } from "../store.js";

const MODES = [
  ["live", "Live", "real orders with real funds"],
  ["sandbox", "Sandbox", "the exchange's test network"],
  ["paper", "Paper", "simulated fills against real prices; no credentials"],
];

export async function render(main) {
  const exchanges = await loadExchanges();
  const select = h(
    "select",
    { name: "exchange" },
    exchanges.map((ex) =>
      h("option", { value: ex.id }, `${ex.name} — ${ex.online ? "online" : "offline"}`),
    ),
  );
  const label = h("input", { type: "text", name: "label", maxlength: "100", required: true, autocomplete: "off" });
  const info = h("div", { class: "exchange-info", id: "exchange-info", "aria-live": "polite" });
  const modes = h("fieldset", { class: "modes" }, h("legend", {}, "Mode"));
  const modeError = h("p", { class: "field-error", id: "key-mode-error", dataset: { errorFor: "mode" } });
  const credentials = h("div", { class: "credentials", id: "credential-fields" });
  const form = h(
    "form",
    { class: "card", novalidate: true, id: "key-form", "aria-labelledby": "add-key-heading" },
    h("h2", { id: "add-key-heading" }, "Add a key"),
    field({ label: "Exchange", control: select, field: "exchange", id: "key-exchange" }),
    info,
    modes,
    modeError,
    field({ label: "Label", control: label, field: "label", id: "key-label", hint: "A name you will recognise." }),
    credentials,
    h("button", { type: "submit", class: "primary" }, "Add key"),
  );
  const list = h("ul", { class: "cards", id: "key-list", "aria-live": "polite" });
  const dialog = confirmDialog({ title: "Delete this key?" });
  main.append(
    pageHeading("API keys"),
    h("div", { class: "two-col" }, form, h("section", { "aria-labelledby": "keys-heading" }, h("h2", { id: "keys-heading" }, "Your keys"), list)),
    dialog.el,
  );

  let balances = null; // the paper key's starting balances, while mode paper is chosen
  const chosen = () => exchanges.find((ex) => ex.id === select.value);
  const mode = () => form.querySelector("input[name=mode]:checked")?.value || "live";

  function renderExchange() {
    const ex = chosen();
    const previous = mode();
    clear(modes, h("legend", {}, "Mode"));
    for (const [value, text, about] of MODES) {
      const offered = ex.modes.includes(value);
      const id = `key-mode-${value}`;
      const input = h("input", {
        type: "radio",
        name: "mode",
        value,
        id,
        disabled: !offered,
        dataset: { field: "mode" },
        "aria-describedby": "key-mode-error",
      });
      modes.append(
        h("div", { class: "radio" }, input, h("label", { for: id }, h("strong", {}, text), " — ", offered ? about : `not offered by ${ex.name}`)),
      );
    }
    const keep = modes.querySelector(`input[value="${previous}"]:not(:disabled)`) || modes.querySelector("input:not(:disabled)");
    if (keep) keep.checked = true;
    renderInfo(ex);
    renderCredentials();
  }

  function renderInfo(ex) {
    const facts = [];
    facts.push(h("dt", {}, "Status"), h("dd", {}, h("span", { class: `status status-${ex.online ? "online" : "offline"}` }, ex.online ? "Online" : "Offline")));
    if (ex.fees?.maker || ex.fees?.taker)
      facts.push(h("dt", {}, "Fees"), h("dd", {}, `${pct(ex.fees.maker)} maker · ${pct(ex.fees.taker)} taker`));
    if (ex.min_order?.typical_cost) facts.push(h("dt", {}, "Typical minimum order"), h("dd", {}, ex.min_order.typical_cost));
    if (ex.markets_count) facts.push(h("dt", {}, "Markets"), h("dd", {}, String(ex.markets_count)));
    clear(
      info,
      h("h3", {}, badge(ex.id, exchanges), " What to know"),
      h("dl", { class: "facts" }, facts),
      ex.notes?.length ? h("ul", { class: "notes" }, ex.notes.map((n) => h("li", {}, n))) : null,
    );
  }

  function renderCredentials() {
    const ex = chosen();
    balances = null;
    if (mode() === "paper") {
      balances = paperBalances(ex);
      clear(credentials, h("p", { class: "hint" }, "Paper keys need no credentials: the connector fills orders itself."), balances.el);
      return;
    }
    clear(
      credentials,
      ex.credentials.map((c) =>
        field({
          label: c.label,
          field: `credentials.${c.name}`,
          id: `cred-${c.name}`,
          control: h("input", {
            type: c.secret ? "password" : "text",
            name: c.name,
            required: true,
            autocomplete: "off",
            spellcheck: "false",
          }),
        }),
      ),
    );
  }

  async function refreshList() {
    const keys = await get("/api-keys");
    clear(
      list,
      keys.length
        ? keys.map((key) =>
            h(
              "li",
              { class: "card key", dataset: { keyId: key.id, exchange: key.exchange } },
              h("div", { class: "card-head" }, badge(key.exchange, exchanges), h("strong", { class: "key-label" }, key.label)),
              h(
                "dl",
                { class: "facts" },
                h("dt", {}, "Key"),
                h("dd", { class: "mono" }, key.key_hint || "—"),
                h("dt", {}, "Mode"),
                h("dd", {}, key.mode),
                h("dt", {}, "Status"),
                h("dd", {}, h("span", { class: `status status-${key.status}` }, key.status)),
                key.mode === "paper" ? [h("dt", {}, "Starts with"), h("dd", { dataset: { role: "paper-balances" } }, startsWith(key))] : null,
              ),
              h(
                "button",
                { type: "button", class: "danger", "aria-label": `Delete key ${key.label} (${key.exchange})`, onclick: () => remove(key) },
                "Delete",
              ),
            ),
          )
        : h("li", { class: "empty" }, "No keys yet. Add one to create bots."),
    );
  }

  async function remove(key) {
    if (!(await dialog.ask(`Delete the key “${key.label}” for ${key.exchange}? Its bots will be paused.`))) return;
    try {
      await del(`/api-keys/${key.id}`);
      announce(`Key ${key.label} deleted.`);
      await refreshList();
    } catch (error) {
      showAlert(error.message);
    }
  }

  form.addEventListener("change", (event) => {
    if (event.target === select) renderExchange();
    else if (event.target.name === "mode") renderCredentials();
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const ex = chosen();
    const body = { exchange: ex.id, label: label.value.trim(), mode: mode(), credentials: {} };
    if (!body.label) return showError(form, { field: "label", message: "Give the key a label." });
    if (body.mode === "paper") {
      const { balances: starting, error } = balances.read();
      if (error) return showError(form, error);
      if (starting) body.paper_balances = starting;
    } else {
      for (const c of ex.credentials) {
        const value = credentials.querySelector(`#cred-${CSS.escape(c.name)}`).value.trim();
        if (!value) return showError(form, { field: `credentials.${c.name}`, message: `Enter the ${c.label}.` });
        body.credentials[c.name] = value;
      }
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    button.textContent = "Checking with the exchange…";
    try {
      const key = await post("/api-keys", body);
      form.reset();
      renderExchange();
      announce(`Key ${key.label} for ${ex.name} added.`);
      await refreshList();
    } catch (error) {
      showError(form, error);
    } finally {
      button.disabled = false;
      button.textContent = "Add key";
    }
  });

  renderExchange();
  await refreshList();
}

function startsWith(key) {
  if (!key.paper_balances) return "10000 each of USD, USDT, USDC and EUR";
  return Object.entries(key.paper_balances)
    .sort(([a], [b]) => a.localeCompare(b)) // jsonb keeps its own key order
    .map(([currency, amount]) => dec(amount, currency))
    .join(", ");
}
