// A new bot: the key decides the exchange, the picker lists that exchange's markets, the strategy's JSON Schema
// builds the parameter fields, and the API's checks come back next to the field they concern.
import { get, post } from "../api.js";
import { announce, badge, clear, clearErrors, exchangeName, field, h, pageHeading, showError } from "../dom.js";
import { marketFacts, missingParam, paramValues, paramFields, typedValues } from "../params.js";
import { label as marketLabel, Picker } from "../picker.js";
import { exchanges as loadExchanges, markets as loadMarkets, strategies as loadStrategies } from "../store.js";

export async function render(main, { navigate }) {
  const [keys, strategies, exchanges] = await Promise.all([get("/api-keys"), loadStrategies(), loadExchanges()]);
  main.append(pageHeading("New bot"));
  if (!keys.length) {
    main.append(
      h("p", { class: "card" }, "A bot trades with one of your API keys. ", h("a", { href: "/keys", "data-link": true }, "Add a key first"), "."),
    );
    return;
  }
  const keySelect = h(
    "select",
    { name: "api_key_id" },
    keys.map((k) => h("option", { value: k.id }, `${exchangeName(k.exchange, exchanges)} · ${k.label}${k.key_hint ? ` (${k.key_hint})` : ""} · ${k.mode}`)),
  );
  const exchangeLine = h("p", { class: "exchange-line", id: "bot-exchange", "aria-live": "polite" });
  const picker = new Picker({ id: "bot-symbol", onChange: () => marketChanged() });
  const pickerField = field({
    label: "Market",
    control: picker.input,
    field: "symbol",
    id: "bot-symbol",
    hint: "Search by symbol (BTC/USD) or the exchange's own id (XXBTZUSD); ↓ ↑ to move, Enter to choose.",
  });
  pickerField.replaceChild(picker.el, picker.input);
  picker.el.prepend(picker.input);
  const marketInfo = h("div", { class: "market-info", id: "market-info", "aria-live": "polite" });
  const strategySelect = h(
    "select",
    { name: "strategy" },
    strategies.map((s) => h("option", { value: s.name }, s.name)),
  );
  const strategyAbout = h("p", { class: "hint", id: "bot-strategy-about" });
  const params = h("fieldset", { class: "params", id: "bot-params" });
  const start = h("input", { type: "checkbox", id: "bot-start", checked: true });
  const form = h(
    "form",
    { class: "card", novalidate: true, id: "bot-form", "aria-label": "New bot" },
    field({ label: "API key", control: keySelect, field: "api_key_id", id: "bot-key" }),
    exchangeLine,
    pickerField,
    marketInfo,
    field({ label: "Strategy", control: strategySelect, field: "strategy", id: "bot-strategy" }),
    strategyAbout,
    params,
    h("div", { class: "checkbox" }, start, h("label", { for: "bot-start" }, "Start the bot once it is created")),
    h("button", { type: "submit", class: "primary" }, "Create bot"),
  );
  main.append(form);
  strategySelect.setAttribute("aria-describedby", `${strategySelect.getAttribute("aria-describedby")} bot-strategy-about`);

  const key = () => keys.find((k) => k.id === keySelect.value);
  const strategy = () => strategies.find((s) => s.name === strategySelect.value);

  async function keyChanged() {
    const k = key();
    clear(exchangeLine, "Trades on ", badge(k.exchange, exchanges));
    picker.setMarkets([]);
    picker.input.disabled = true;
    picker.input.placeholder = "Loading markets…";
    try {
      picker.setMarkets(await loadMarkets(k.exchange));
      picker.input.placeholder = "Type a symbol or the exchange's id";
    } catch (error) {
      picker.input.placeholder = "";
      showError(form, { field: "symbol", message: error.message });
    } finally {
      picker.input.disabled = false;
    }
  }

  function marketChanged() {
    const m = picker.value;
    if (!m) {
      clear(marketInfo);
    } else {
      const name = exchangeName(key().exchange, exchanges);
      clear(
        marketInfo,
        h("h3", {}, marketLabel(m)),
        h("dl", { class: "facts" }, marketFacts(m, name).map(([t, d]) => [h("dt", {}, t), h("dd", {}, d)])),
      );
    }
    renderParams(true);
  }

  function renderParams(keepValues = false) {
    const s = strategy();
    strategyAbout.textContent = s.description;
    paramFields(params, s, picker.value, { values: keepValues ? typedValues(params) : {} });
  }

  keySelect.addEventListener("change", keyChanged);
  strategySelect.addEventListener("change", () => renderParams(false));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const symbol = picker.value?.symbol || picker.input.value.trim();
    if (!symbol) return showError(form, { field: "symbol", message: "Choose a market." });
    const values = paramValues(params, strategy());
    const missing = missingParam(strategy(), values);
    if (missing) return showError(form, missing);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const bot = await post("/bots", { api_key_id: keySelect.value, symbol, strategy: strategySelect.value, params: values });
      if (start.checked) await post(`/bots/${bot.id}/start`);
      announce(`Bot for ${bot.symbol} on ${exchangeName(bot.exchange, exchanges)} created.`);
      await navigate(`/dashboard`);
    } catch (error) {
      showError(form, error);
    } finally {
      button.disabled = false;
    }
  });

  renderParams();
  await keyChanged();
}
