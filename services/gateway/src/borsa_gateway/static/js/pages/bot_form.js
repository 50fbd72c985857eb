// A new bot: the key decides the exchange, the picker lists that exchange's markets, the strategy's JSON Schema
// builds the parameter fields, and the API's checks come back next to the field they concern.
import { get, post } from "../api.js";
import { announce, badge, clear, clearErrors, dec, exchangeName, field, h, pageHeading, pct, showError } from "../dom.js";
import { label as marketLabel, Picker } from "../picker.js";
import { exchanges as loadExchanges, markets as loadMarkets, strategies as loadStrategies } from "../store.js";

const AMOUNT_PARAMS = new Set(["quote_amount", "quote_per_level"]);
const PRICE_PARAMS = new Set(["low", "high"]);

function words(name) {
  const text = name.replace(/_pct$/, "").replace(/_seconds$/, "").replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function paramLabel(name, market) {
  if (name.endsWith("_seconds")) return `${words(name)} (seconds)`;
  if (name.endsWith("_pct")) return `${words(name)} (%)`;
  if (AMOUNT_PARAMS.has(name) || PRICE_PARAMS.has(name)) return `${words(name)}${market ? ` (${market.quote})` : ""}`;
  return words(name);
}

// {schema, optional} of a property: `anyOf: [X, null]` is an optional X.
function unwrap(prop) {
  if (prop.anyOf) {
    const inner = prop.anyOf.find((p) => p.type !== "null") || {};
    return { schema: { ...inner, default: prop.default }, optional: prop.anyOf.some((p) => p.type === "null") };
  }
  return { schema: prop, optional: false };
}

function marketFacts(market, exchange) {
  const l = market.limits || {};
  const minimums = [];
  if (l.cost?.min) minimums.push(dec(l.cost.min, market.quote));
  if (l.amount?.min) minimums.push(dec(l.amount.min, market.base));
  return [
    ["Minimum order", minimums.join(" and ") || "none stated"],
    ["Amount step", dec(market.precision?.amount, market.base)],
    ["Price step", dec(market.precision?.price, market.quote)],
    ["Fees", `${pct(market.maker)} maker · ${pct(market.taker)} taker`],
    ["Exchange", exchange],
  ];
}

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
    const m = picker.value;
    strategyAbout.textContent = s.description;
    const old = {};
    if (keepValues) for (const input of params.querySelectorAll("input")) old[input.name] = input.value;
    const schema = s.params_schema;
    const required = new Set(schema.required || []);
    clear(params, h("legend", {}, `Parameters of ${s.name}`));
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      const { schema: p, optional } = unwrap(prop);
      const attrs = { name, required: required.has(name) && !optional, autocomplete: "off" };
      if (p.type === "integer" || p.type === "number") {
        Object.assign(attrs, { type: "number", step: p.type === "integer" ? "1" : "any", min: p.minimum, max: p.maximum, inputmode: "numeric" });
      } else {
        Object.assign(attrs, { type: "text", inputmode: p.pattern?.includes("[0-9]") ? "decimal" : undefined });
      }
      const input = h("input", attrs);
      if (old[name] !== undefined) input.value = old[name];
      const hints = [];
      if (p.type === "integer" && (p.minimum !== undefined || p.maximum !== undefined)) hints.push(`From ${p.minimum} to ${p.maximum}.`);
      if (!required.has(name) || optional) hints.push("Optional.");
      if (AMOUNT_PARAMS.has(name) && m) {
        const f = Object.fromEntries(marketFacts(m, ""));
        hints.push(`Per order. Minimum order ${f["Minimum order"]}; amount step ${f["Amount step"]}; price step ${f["Price step"]}; fees ${f.Fees}.`);
      }
      if (name === "timeframe") hints.push("Like 1m, 15m, 1h, 1d.");
      const label = paramLabel(name, m) + (required.has(name) && !optional ? "" : " (optional)");
      params.append(field({ label, control: input, field: `params.${name}`, id: `param-${name}`, hint: hints.join(" ") || null }));
    }
  }

  function paramValues() {
    const s = strategy();
    const out = {};
    for (const [name, prop] of Object.entries(s.params_schema.properties || {})) {
      const { schema: p } = unwrap(prop);
      const raw = params.querySelector(`input[name="${CSS.escape(name)}"]`).value.trim();
      if (raw === "") continue;
      out[name] = p.type === "integer" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
    }
    return out;
  }

  keySelect.addEventListener("change", keyChanged);
  strategySelect.addEventListener("change", () => renderParams(false));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const symbol = picker.value?.symbol || picker.input.value.trim();
    if (!symbol) return showError(form, { field: "symbol", message: "Choose a market." });
    const values = paramValues();
    for (const name of strategy().params_schema.required || []) {
      if (!(name in values)) return showError(form, { field: `params.${name}`, message: `Enter ${words(name).toLowerCase()}.` });
    }
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
