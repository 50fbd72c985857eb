// Reports: summaries per exchange, bot and symbol, the PnL chart, the trade history with filters, CSV download.
import { download, get, query } from "../api.js";
import { announce, badge, clear, clearErrors, dec, exchangeName, field, h, pageHeading, showError, showMoney, time } from "../dom.js";
import { pnlChart } from "../chart.js";
import { exchanges as loadExchanges } from "../store.js";

const PAGE = 50;

// Money rounded for reading (cents for fiat and stablecoin quotes), the exact value in the cell's title; the CSV keeps
// every digit.
const moneyCell = (value, unit) => showMoney(h("td", { class: "num" }), value, unit);
const GROUPS = [
  ["exchange", "By exchange"],
  ["bot", "By bot"],
  ["symbol", "By symbol"],
];

export async function render(main) {
  const [exchanges, bots] = await Promise.all([loadExchanges().catch(() => []), get("/bots")]);
  const botName = (id) => {
    const b = bots.find((x) => x.id === id);
    return b ? `${b.symbol} ${b.strategy} (${exchangeName(b.exchange, exchanges)})` : id ? `${id.slice(0, 8)}…` : "—";
  };
  const exchange = h("select", { name: "exchange" }, h("option", { value: "" }, "All exchanges"), exchanges.map((e) => h("option", { value: e.id }, e.name)));
  const bot = h("select", { name: "bot_id" }, h("option", { value: "" }, "All bots"), bots.map((b) => h("option", { value: b.id }, botName(b.id))));
  const symbol = h("input", { type: "text", name: "symbol", placeholder: "BTC/USD", autocomplete: "off" });
  const since = h("input", { type: "datetime-local", name: "since" });
  const until = h("input", { type: "datetime-local", name: "until" });
  const csv = h("button", { type: "button", id: "download-csv" }, "Download CSV");
  const filters = h(
    "form",
    { class: "card filters", id: "report-filters", "aria-label": "Report filters", novalidate: true },
    field({ label: "Exchange", control: exchange, field: "exchange", id: "rep-exchange" }),
    field({ label: "Bot", control: bot, field: "bot_id", id: "rep-bot" }),
    field({ label: "Symbol", control: symbol, field: "symbol", id: "rep-symbol" }),
    field({ label: "From", control: since, field: "since", id: "rep-since" }),
    field({ label: "Until", control: until, field: "until", id: "rep-until" }),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Apply"), csv),
  );
  const chart = h("figure", { class: "card chart-card", id: "pnl" }, h("figcaption", {}, "Cumulative realised PnL"));
  const tables = h("div", { class: "summaries", id: "summaries" });
  const tradesBody = h("tbody");
  const more = h("button", { type: "button", id: "more-trades", hidden: true }, "Show more");
  const trades = h(
    "section",
    { class: "card", "aria-labelledby": "trades-heading" },
    h("h2", { id: "trades-heading" }, "Trade history"),
    h(
      "div",
      { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Trade history, scrolls sideways" },
      h(
        "table",
        { id: "trades-table" },
        h("thead", {}, h("tr", {}, ["Time", "Exchange", "Symbol", "Side", "Amount", "Price", "Fee", "Realised PnL", "Bot"].map((t) => h("th", { scope: "col" }, t)))),
        tradesBody,
      ),
    ),
    more,
  );
  main.append(pageHeading("Reports"), filters, chart, tables, trades);

  const params = new URLSearchParams(location.search);
  for (const control of [exchange, bot, symbol]) if (params.get(control.name)) control.value = params.get(control.name);

  function current() {
    const iso = (input) => (input.value ? new Date(input.value).toISOString() : undefined);
    return { exchange: exchange.value, bot_id: bot.value, symbol: symbol.value.trim(), since: iso(since), until: iso(until) };
  }

  let offset = 0;
  async function loadTrades(reset) {
    if (reset) {
      offset = 0;
      tradesBody.replaceChildren();
    }
    const rows = await get(`/trades${query({ ...current(), limit: PAGE, offset })}`);
    offset += rows.length;
    for (const t of rows) {
      const quote = (t.symbol.split("/")[1] || "").split(":")[0];
      tradesBody.append(
        h(
          "tr",
          { dataset: { tradeId: t.trade_id, exchange: t.exchange } },
          h("td", {}, h("time", { datetime: new Date(t.timestamp_ms).toISOString() }, time(t.timestamp_ms))),
          h("td", {}, badge(t.exchange, exchanges)),
          h("td", {}, t.symbol),
          h("td", { class: `side-${t.side}` }, t.side),
          h("td", { class: "num" }, dec(t.amount)),
          h("td", { class: "num" }, dec(t.price, quote)),
          t.fee_cost ? moneyCell(t.fee_cost, t.fee_currency) : h("td", { class: "num" }, "—"),
          moneyCell(t.realized_pnl, quote),
          h("td", {}, botName(t.bot_id)),
        ),
      );
    }
    if (!tradesBody.children.length) tradesBody.append(h("tr", {}, h("td", { colspan: "9", class: "empty" }, "No fills match.")));
    more.hidden = rows.length < PAGE;
  }

  function summaryTable(group, title, rows) {
    const key = { exchange: "Exchange", bot: "Bot", symbol: "Symbol" }[group];
    return h(
      "section",
      { class: "card", "aria-labelledby": `sum-${group}` },
      h("h2", { id: `sum-${group}` }, title),
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `${title}, scrolls sideways` },
        h(
          "table",
          { id: `summary-${group}` },
          h("thead", {}, h("tr", {}, [key, ...(group === "exchange" ? [] : ["Exchange"]), "Orders", "Fills", "Volume", "Fees", "Realised PnL", "Unrealised PnL", "Position"].map((t) => h("th", { scope: "col" }, t)))),
          h(
            "tbody",
            {},
            rows.length
              ? rows.map((r) =>
                  h(
                    "tr",
                    { dataset: { exchange: r.exchange } },
                    h("th", { scope: "row" }, group === "exchange" ? badge(r.exchange, exchanges) : group === "bot" ? botName(r.bot_id) : r.symbol),
                    group === "exchange" ? null : h("td", {}, badge(r.exchange, exchanges)),
                    h("td", { class: "num" }, String(r.orders)),
                    h("td", { class: "num" }, String(r.fills)),
                    moneyCell(r.volume, r.quote),
                    moneyCell(r.fees, r.quote),
                    moneyCell(r.realized_pnl, r.quote),
                    moneyCell(r.unrealized_pnl, r.quote),
                    h("td", { class: "num" }, r.position === null ? "—" : dec(r.position)),
                  ),
                )
              : h("tr", {}, h("td", { colspan: "9", class: "empty" }, "Nothing yet.")),
          ),
        ),
      ),
    );
  }

  async function refresh() {
    clearErrors(filters);
    const f = current();
    try {
      const [summaries, recent] = await Promise.all([
        Promise.all(GROUPS.map(([g]) => get(`/reports/summary${query({ ...f, group_by: g })}`))),
        get(`/trades${query({ ...f, limit: 1000 })}`),
      ]);
      clear(tables, GROUPS.map(([g, title], i) => summaryTable(g, title, summaries[i].rows)));
      clear(chart, h("figcaption", {}, `Cumulative realised PnL (${recent.length} fill${recent.length === 1 ? "" : "s"})`), pnlChart(recent, { width: chart.clientWidth - 34 }));
      await loadTrades(true);
      history.replaceState(null, "", `/reports${query({ exchange: f.exchange, bot_id: f.bot_id, symbol: f.symbol })}`);
    } catch (error) {
      showError(filters, error);
    }
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  more.addEventListener("click", () => loadTrades(false).catch((e) => showError(filters, e)));
  csv.addEventListener("click", async () => {
    clearErrors(filters);
    csv.disabled = true;
    try {
      await download(`/reports/trades.csv${query(current())}`, "borsa-trades.csv");
      announce("The CSV file is downloading.");
    } catch (error) {
      showError(filters, error);
    } finally {
      csv.disabled = false;
    }
  });
  await refresh();
}
