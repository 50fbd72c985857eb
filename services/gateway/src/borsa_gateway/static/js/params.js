// A strategy's parameter fields built from its JSON Schema: shared by the new-bot form and the dashboard's edit dialog.
import { clear, dec, field, h, pct } from "./dom.js";

const AMOUNT_PARAMS = new Set(["quote_amount", "quote_per_level"]);
const PRICE_PARAMS = new Set(["low", "high"]);

export function words(name) {
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

export function marketFacts(market, exchange) {
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

// What the inputs hold now, by parameter name: kept when the fields are built again for another market.
export function typedValues(fieldset) {
  const out = {};
  for (const input of fieldset.querySelectorAll("input")) out[input.name] = input.value;
  return out;
}

// The fieldset's legend and one labelled input per parameter (ids `${idPrefix}-${name}`, API field `params.${name}`),
// filled from `values`; the market, when known, names the quote currency and its rules next to the amounts.
export function paramFields(fieldset, strategy, market, { idPrefix = "param", values = {} } = {}) {
  const schema = strategy.params_schema;
  const required = new Set(schema.required || []);
  clear(fieldset, h("legend", {}, `Parameters of ${strategy.name}`));
  for (const [name, prop] of Object.entries(schema.properties || {})) {
    const { schema: p, optional } = unwrap(prop);
    const needed = required.has(name) && !optional;
    const attrs = { name, required: needed, autocomplete: "off" };
    if (p.type === "integer" || p.type === "number") {
      Object.assign(attrs, { type: "number", step: p.type === "integer" ? "1" : "any", min: p.minimum, max: p.maximum, inputmode: "numeric" });
    } else {
      Object.assign(attrs, { type: "text", inputmode: p.pattern?.includes("[0-9]") ? "decimal" : undefined });
    }
    const input = h("input", attrs);
    if (values[name] !== undefined && values[name] !== null) input.value = String(values[name]);
    const hints = [];
    if (p.type === "integer" && (p.minimum !== undefined || p.maximum !== undefined)) hints.push(`From ${p.minimum} to ${p.maximum}.`);
    if (!needed) hints.push("Optional.");
    if (AMOUNT_PARAMS.has(name) && market) {
      const f = Object.fromEntries(marketFacts(market, ""));
      hints.push(`Per order. Minimum order ${f["Minimum order"]}; amount step ${f["Amount step"]}; price step ${f["Price step"]}; fees ${f.Fees}.`);
    }
    if (name === "timeframe") hints.push("Like 1m, 15m, 1h, 1d.");
    const label = paramLabel(name, market) + (needed ? "" : " (optional)");
    fieldset.append(field({ label, control: input, field: `params.${name}`, id: `${idPrefix}-${name}`, hint: hints.join(" ") || null }));
  }
}

// The params to send: empty inputs left out, whole numbers for integer parameters; decimals stay strings.
export function paramValues(fieldset, strategy) {
  const out = {};
  for (const [name, prop] of Object.entries(strategy.params_schema.properties || {})) {
    const { schema: p } = unwrap(prop);
    const raw = fieldset.querySelector(`input[name="${CSS.escape(name)}"]`)?.value.trim() ?? "";
    if (raw === "") continue;
    out[name] = p.type === "integer" && /^-?\d+$/.test(raw) ? Number(raw) : raw;
  }
  return out;
}

// The first required parameter left empty, as an error for showError; null when all are there.
export function missingParam(strategy, values) {
  for (const name of strategy.params_schema.required || []) {
    if (!(name in values)) return { field: `params.${name}`, message: `Enter ${words(name).toLowerCase()}.` };
  }
  return null;
}

// One line for a bot card: "Quote amount 20 USDT · Interval 3600 s".
export function paramSummary(params, quote) {
  return Object.entries(params || {})
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([name, value]) => {
      if (name.endsWith("_seconds")) return `${words(name)} ${value} s`;
      if (name.endsWith("_pct")) return `${words(name)} ${dec(value)}%`;
      if (AMOUNT_PARAMS.has(name) || PRICE_PARAMS.has(name)) return `${words(name)} ${dec(value, quote)}`;
      return `${words(name)} ${value}`;
    })
    .join(" · ");
}
