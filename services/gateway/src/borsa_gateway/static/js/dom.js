// Small DOM helpers: elements, form fields with their labels and error slots, the alert region, badges.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
export const uid = (prefix) => `${prefix}-${++ids}`;

// A labelled control with a hint and an error slot, tied with aria-describedby. `field` is the API's field name.
export function field({ label, control, field: name, hint, id }) {
  const controlId = id || control.id || uid("f");
  control.id = controlId;
  if (name) control.dataset.field = name;
  const errorId = `${controlId}-error`;
  const described = [];
  let hintEl = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${controlId}-hint` }, hint);
    described.push(hintEl.id);
  }
  described.push(errorId);
  control.setAttribute("aria-describedby", described.join(" "));
  const error = h("p", { class: "field-error", id: errorId, dataset: { errorFor: name || controlId } });
  return h("div", { class: "field" }, h("label", { for: controlId }, label), control, hintEl, error);
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const alert of form.querySelectorAll(".form-alert")) {
    alert.hidden = true;
    alert.textContent = "";
  }
  hideAlert();
}

// The field's message next to the field when the form has it; otherwise in the form's own alert region (a form in a
// modal dialog) or the page's. Returns the control.
export function showError(form, error) {
  const name = error.field;
  const slot = name && form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  if (!slot) {
    const own = form.querySelector(".form-alert");
    if (own) {
      own.textContent = error.message;
      own.hidden = false;
    } else {
      showAlert(error.message);
    }
    return null;
  }
  slot.textContent = error.message;
  const control = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
  if (control) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
  return control;
}

export function showAlert(message, kind = "error") {
  const alert = document.getElementById("alert");
  alert.className = `alert alert-${kind}`;
  alert.textContent = message;
  alert.hidden = false;
}

export function hideAlert() {
  const alert = document.getElementById("alert");
  alert.hidden = true;
  alert.textContent = "";
}

export function announce(message) {
  const region = document.getElementById("announcer");
  region.textContent = "";
  // A new text node after a tick, so a repeated message is read again.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

const NAMES = { binance: "Binance", kraken: "Kraken", coinbase: "Coinbase", kucoin: "KuCoin" };

export function exchangeName(id, exchanges) {
  return exchanges?.find((e) => e.id === id)?.name || NAMES[id] || id;
}

export function badge(id, exchanges) {
  return h("span", { class: "badge", dataset: { exchange: id } }, exchangeName(id, exchanges));
}

// Decimal strings shown as they are (no float rounding); long tails trimmed of trailing zeros.
export function dec(value, unit) {
  if (value === null || value === undefined || value === "") return "—";
  let text = String(value);
  if (text.includes(".")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return unit ? `${text} ${unit}` : text;
}

// Money for reading at a glance (PnL): rounded half away from zero on the decimal string itself, to cents for fiat and
// stablecoin quotes and to 8 places (trailing zeros trimmed) for the rest. Keep the exact value in a title.
const CENT_QUOTES = new Set(["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "USDT", "USDC", "DAI", "FDUSD", "TUSD", "BUSD"]);

export function money(value, unit) {
  if (value === null || value === undefined || value === "") return "—";
  const places = CENT_QUOTES.has(unit) ? 2 : 8;
  let text = roundDecimal(String(value), places);
  if (places !== 2 && text.includes(".")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  return unit ? `${text} ${unit}` : text;
}

// `el` showing `value` as money (rounded for reading), its exact value in the title; returns `el`.
export function showMoney(el, value, unit) {
  el.textContent = money(value, unit);
  el.title = value === null || value === undefined || value === "" ? "" : dec(value, unit);
  return el;
}

function roundDecimal(text, places) {
  const match = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(text.trim());
  if (!match) return Number(text).toFixed(places); // exponent notation: tiny or huge, float is close enough to show
  const [, sign, whole, fraction = ""] = match;
  let digits = (whole || "0") + fraction.padEnd(places, "0").slice(0, places);
  if (fraction.length > places && fraction[places] >= "5") {
    const d = digits.split("").map(Number);
    let i = d.length - 1;
    while (i >= 0 && d[i] === 9) d[i--] = 0;
    if (i >= 0) d[i] += 1;
    digits = (i < 0 ? "1" : "") + d.join("");
  }
  const int = digits.slice(0, digits.length - places).replace(/^0+(?=\d)/, "") || "0";
  const body = places ? `${int}.${digits.slice(digits.length - places)}` : int;
  return sign === "-" && /[1-9]/.test(body) ? `-${body}` : body;
}

export function pct(rate) {
  if (rate === null || rate === undefined) return "—";
  return `${(Number(rate) * 100).toFixed(2).replace(/\.?0+$/, "")}%`;
}

export function time(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString();
}

export function pageHeading(text) {
  return h("h1", { tabindex: "-1" }, text);
}
