// A searchable market picker: the ARIA 1.2 combobox pattern (an input that controls a listbox), keyboard first.
import { h } from "./dom.js";

const MAX_SHOWN = 50;
const norm = (text) => String(text || "").toUpperCase().replace(/[^A-Z0-9]/g, "");

// Letters of `needle` in order within `hay` (XBTUSD in XXBTZUSD): how people type native ids.
function subsequence(needle, hay) {
  let i = 0;
  for (const ch of hay) if (ch === needle[i]) i += 1;
  return i === needle.length;
}

// 0 exact, 1 prefix, 2 contains, 3 letters in order; -1 no match. Symbol, native id and base are all searched.
export function score(market, text) {
  const q = norm(text);
  if (!q) return 2;
  const names = [norm(market.symbol), norm(market.market_id), norm(market.base)];
  if (names.slice(0, 2).includes(q)) return 0;
  if (names.some((n) => n.startsWith(q))) return 1;
  if (names.some((n) => n.includes(q))) return 2;
  if (names.slice(0, 2).some((n) => subsequence(q, n))) return 3;
  return -1;
}

export function label(market) {
  return `${market.symbol} · ${market.market_id}`;
}

export class Picker {
  constructor({ id, onChange }) {
    this.id = id;
    this.onChange = onChange;
    this.markets = [];
    this.shown = [];
    this.active = -1;
    this.value = null;
    this.input = h("input", {
      id,
      type: "text",
      role: "combobox",
      "aria-autocomplete": "list",
      "aria-expanded": "false",
      "aria-controls": `${id}-list`,
      autocomplete: "off",
      spellcheck: "false",
      placeholder: "Type a symbol or the exchange's id",
    });
    this.list = h("ul", { id: `${id}-list`, role: "listbox", class: "listbox", hidden: true });
    this.status = h("p", { class: "visually-hidden", "aria-live": "polite", id: `${id}-status` });
    this.el = h("div", { class: "combobox" }, this.input, this.list, this.status);
    this.input.addEventListener("input", () => {
      this.select(null, false);
      this.filter();
      this.open();
    });
    this.input.addEventListener("keydown", (e) => this.key(e));
    this.input.addEventListener("focus", () => {
      if (!this.value) {
        this.filter();
        this.open();
      }
    });
    this.input.addEventListener("blur", () => setTimeout(() => this.close(), 150));
    // mousedown, not click: the input keeps the focus.
    this.list.addEventListener("mousedown", (e) => {
      const option = e.target.closest("[role=option]");
      if (!option) return;
      e.preventDefault();
      this.select(this.shown[Number(option.dataset.index)]);
      this.close();
    });
  }

  setMarkets(markets) {
    this.markets = markets;
    this.select(null, false);
    this.input.value = "";
    this.filter();
  }

  filter() {
    const text = this.input.value;
    const ranked = [];
    for (const m of this.markets) {
      const s = score(m, text);
      if (s >= 0) ranked.push([s, m]);
    }
    ranked.sort((a, b) => a[0] - b[0] || a[1].symbol.localeCompare(b[1].symbol));
    this.total = ranked.length;
    this.shown = ranked.slice(0, MAX_SHOWN).map(([, m]) => m);
    this.active = -1;
    this.input.removeAttribute("aria-activedescendant");
    this.list.replaceChildren(
      ...this.shown.map((m, i) =>
        h(
          "li",
          { role: "option", id: `${this.id}-opt-${i}`, "aria-selected": "false", dataset: { index: i, symbol: m.symbol } },
          h("span", { class: "symbol" }, m.symbol),
          h("span", { class: "sep", "aria-hidden": "true" }, " · "),
          h("span", { class: "market-id" }, m.market_id),
        ),
      ),
    );
    if (!this.shown.length) this.list.append(h("li", { class: "empty", role: "presentation" }, "No market matches"));
    else if (this.total > this.shown.length)
      this.list.append(h("li", { class: "more", role: "presentation" }, `${this.total - this.shown.length} more: keep typing`));
    this.status.textContent = this.markets.length ? `${this.total} markets match` : "";
  }

  open() {
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  }

  close() {
    this.list.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  move(to) {
    if (!this.shown.length) return;
    this.active = (to + this.shown.length) % this.shown.length;
    for (const [i, option] of this.list.querySelectorAll("[role=option]").entries()) {
      option.setAttribute("aria-selected", String(i === this.active));
      option.classList.toggle("active", i === this.active);
      if (i === this.active) option.scrollIntoView({ block: "nearest" });
    }
    this.input.setAttribute("aria-activedescendant", `${this.id}-opt-${this.active}`);
  }

  key(e) {
    const expanded = !this.list.hidden;
    switch (e.key) {
      case "ArrowDown":
        e.preventDefault();
        if (!expanded) {
          this.filter();
          this.open();
        }
        this.move(expanded ? this.active + 1 : 0);
        break;
      case "ArrowUp":
        e.preventDefault();
        if (!expanded) {
          this.filter();
          this.open();
        }
        this.move(this.active <= 0 ? this.shown.length - 1 : this.active - 1);
        break;
      case "Enter":
        if (expanded && this.shown.length) {
          e.preventDefault();
          this.select(this.shown[this.active >= 0 ? this.active : 0]);
          this.close();
        }
        break;
      case "Escape":
        if (expanded) {
          e.preventDefault();
          this.close();
        } else if (this.input.value) {
          e.preventDefault();
          this.input.value = "";
          this.select(null);
        }
        break;
      case "Tab":
        this.close();
        break;
      default:
    }
  }

  select(market, announce = true) {
    const changed = market !== this.value;
    this.value = market;
    if (market) {
      this.input.value = label(market);
      if (announce) this.status.textContent = `${label(market)} chosen`;
    }
    this.input.dataset.symbol = market ? market.symbol : "";
    if (changed) this.onChange?.(market);
  }
}
