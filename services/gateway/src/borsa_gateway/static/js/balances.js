// A paper key's starting balances: currency and amount rows, the exchange's quote currencies suggested, checked
// with the API's own rules (routes/api_keys.py) before they are sent.
import { clear, field, h, uid } from "./dom.js";
import { markets as loadMarkets } from "./store.js";

const DEFAULT_SET = ["USD", "USDT", "USDC", "EUR"]; // what the API gives a paper key sent without balances
const CURRENCY = /^[A-Z0-9]{1,20}$/;
const AMOUNT = /^[0-9]{1,30}(\.[0-9]{1,18})?$/;
const MAX_ROWS = 50; // the API's limit
const QUOTES_NAMED = 6;

// The exchange's quote currencies, the most used first.
async function quotesOf(exchange) {
  if (!exchange.online) return DEFAULT_SET;
  try {
    const counts = new Map();
    for (const m of await loadMarkets(exchange.id)) counts.set(m.quote, (counts.get(m.quote) || 0) + 1);
    const quotes = [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([q]) => q);
    return quotes.length ? quotes : DEFAULT_SET;
  } catch {
    return DEFAULT_SET; // the suggestions are a help, not a requirement
  }
}

export function paperBalances(exchange) {
  const listId = uid("quotes");
  const suggestions = h("datalist", { id: listId });
  const about = h(
    "p",
    { class: "hint", id: uid("balances-hint") },
    `Rows without an amount are skipped; with none, the key starts with 10000 each of ${DEFAULT_SET.join(", ")}.`,
  );
  const quotesLine = h("p", { class: "hint", "aria-live": "polite" });
  const rows = h("div", { class: "balance-rows" });
  const add = h("button", { type: "button", class: "add-row" }, "Add a currency");
  const el = h(
    "fieldset",
    { class: "balances", id: "paper-balances", "aria-describedby": about.id },
    h("legend", {}, "Starting balances"),
    about,
    quotesLine,
    rows,
    add,
    suggestions,
  );
  let made = 0;

  function renumber() {
    [...rows.children].forEach((row, i) => {
      row.setAttribute("aria-label", `Balance ${i + 1}`);
      row.querySelector(".remove-row").setAttribute("aria-label", `Remove balance ${i + 1}`);
    });
    add.disabled = rows.children.length >= MAX_ROWS;
  }

  function addRow(currency = "") {
    made += 1;
    const n = made;
    const code = h("input", {
      type: "text",
      name: `balance-currency-${n}`,
      list: listId,
      maxlength: "20",
      autocomplete: "off",
      autocapitalize: "characters",
      spellcheck: "false",
      class: "currency",
    });
    code.value = currency;
    code.addEventListener("change", () => {
      code.value = code.value.trim().toUpperCase();
    });
    const amount = h("input", { type: "text", name: `balance-amount-${n}`, inputmode: "decimal", autocomplete: "off", placeholder: "10000" });
    const remove = h("button", { type: "button", class: "remove-row" }, "Remove");
    const row = h(
      "div",
      { class: "balance-row", role: "group" },
      field({ label: "Currency", control: code, field: code.name, id: `balance-currency-${n}` }),
      field({ label: "Amount", control: amount, field: amount.name, id: `balance-amount-${n}` }),
      remove,
    );
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumber();
      (next?.querySelector("input") || add).focus();
    });
    rows.append(row);
    renumber();
    return code;
  }

  add.addEventListener("click", () => addRow().focus());

  // The API names a balance's problem `paper_balances.<CODE>`: point that name at the row's amount before sending.
  function nameFor(control, name) {
    control.dataset.field = name;
    el.querySelector(`#${CSS.escape(control.id)}-error`).dataset.errorFor = name;
  }

  const first = addRow();
  quotesOf(exchange).then((quotes) => {
    clear(suggestions, quotes.map((q) => h("option", { value: q })));
    quotesLine.textContent = `${exchange.name} quotes its markets in ${quotes.slice(0, QUOTES_NAMED).join(", ")}${quotes.length > QUOTES_NAMED ? " and more" : ""}.`;
    if (!first.value && document.activeElement !== first) first.value = quotes[0];
  });

  return {
    el,
    // {balances} to send (null: the API's default set), or {error} for showError.
    read() {
      const balances = {};
      for (const row of rows.children) {
        const [code, amount] = row.querySelectorAll("input");
        nameFor(code, code.name);
        nameFor(amount, amount.name);
        const currency = code.value.trim().toUpperCase();
        const value = amount.value.trim();
        if (!value) continue;
        if (!currency) return { error: { field: code.name, message: "Enter the currency of this amount." } };
        if (!CURRENCY.test(currency))
          return { error: { field: code.name, message: "A currency code is 1 to 20 letters and digits, like USDT or BTC." } };
        if (currency in balances) return { error: { field: code.name, message: `${currency} is listed twice.` } };
        if (!AMOUNT.test(value)) return { error: { field: amount.name, message: "Enter an amount like 10000 or 0.5 (digits and one point)." } };
        balances[currency] = value;
        nameFor(amount, `paper_balances.${currency}`);
      }
      return { balances: Object.keys(balances).length ? balances : null };
    },
  };
}
