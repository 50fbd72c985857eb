// The dashboard: bots grouped by exchange, each with status, position and PnL, kept current by live events (and the
// figures read again every few seconds: unrealised PnL moves with the market); each bot started, stopped, edited in a
// dialog or deleted after a confirmation.
import { del, get, post, query } from "../api.js";
import { editDialog } from "../bot_edit.js";
import { confirmDialog } from "../dialog.js";
import { announce, badge, clear, dec, exchangeName, field, h, pageHeading, showAlert, showMoney, time } from "../dom.js";
import { connectEvents } from "../events.js";
import { paramSummary } from "../params.js";
import { exchanges as loadExchanges } from "../store.js";

const FILLS_SHOWN = 5;
// Unrealised PnL moves with the market, which no event carries: the figures are read again this often (while the
// tab is visible), and soon after a fill.
const FIGURES_EVERY_MS = 10_000;
const FIGURES_AFTER_FILL_MS = 1_000;
const STATE_TEXT = { connecting: "Live updates: connecting…", live: "Live updates: on", offline: "Live updates: reconnecting…" };

// `fn` once, `ms` after the first of any number of calls: a burst of events reads the server once.
function soon(fn, ms) {
  let timer = null;
  const call = () => {
    timer ??= setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
  call.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return call;
}

const sides = (symbol) => {
  const [base, quote] = symbol.split("/");
  return { base, quote: (quote || "").split(":")[0] };
};

export async function render(main) {
  const exchanges = await loadExchanges().catch(() => []);
  const live = h("p", { class: "live", id: "live-status", dataset: { state: "connecting" } }, STATE_TEXT.connecting);
  const filter = h("select", { name: "exchange" });
  const groups = h("div", { class: "groups", id: "bot-groups" });
  const confirmDelete = confirmDialog({ title: "Delete this bot?" });
  const confirmStop = confirmDialog({ title: "Stop this bot?", confirm: "Stop", cancel: "Keep running", danger: false, option: true });
  const editor = editDialog({ exchanges, onSaved: saved });
  main.append(
    h("div", { class: "page-head" }, pageHeading("Dashboard"), live),
    h("div", { class: "toolbar" }, field({ label: "Exchange", control: filter, id: "dash-exchange" }), h("a", { href: "/bots/new", "data-link": true, class: "button" }, "New bot")),
    groups,
    confirmDelete.el,
    confirmStop.el,
    editor.el,
  );

  const cards = new Map(); // bot id -> {el, bot, seen fills}
  const params = new URLSearchParams(location.search);

  async function load() {
    const [bots, summary, trades] = await Promise.all([
      get("/bots"),
      get(`/reports/summary${query({ group_by: "bot" })}`).catch(() => ({ rows: [] })),
      get(`/trades${query({ limit: 200 })}`).catch(() => []),
    ]);
    const byBot = new Map(summary.rows.filter((r) => r.bot_id).map((r) => [r.bot_id, r]));
    cards.clear();
    const present = [...new Set(bots.map((b) => b.exchange))];
    const chosen = params.get("exchange") || filter.value || "";
    clear(
      filter,
      h("option", { value: "" }, `All exchanges (${bots.length})`),
      present.map((ex) => h("option", { value: ex }, `${exchangeName(ex, exchanges)} (${bots.filter((b) => b.exchange === ex).length})`)),
    );
    filter.value = present.includes(chosen) ? chosen : "";
    if (!bots.length) {
      clear(groups, h("p", { class: "card empty" }, "No bots yet. ", h("a", { href: "/bots/new", "data-link": true }, "Create your first bot"), "."));
      return;
    }
    clear(
      groups,
      present.map((ex) =>
        h(
          "section",
          { class: "exchange-group", dataset: { exchange: ex }, "aria-labelledby": `group-${ex}` },
          h("h2", { id: `group-${ex}` }, badge(ex, exchanges), h("span", { class: "count" }, ` ${bots.filter((b) => b.exchange === ex).length} bot(s)`)),
          h("ul", { class: "cards" }, bots.filter((b) => b.exchange === ex).map((b) => card(b, byBot.get(b.id)))),
        ),
      ),
    );
    for (const t of [...trades].reverse()) if (t.bot_id && cards.has(t.bot_id)) addFill(t.bot_id, t, false);
    applyFilter();
  }

  function card(bot, row) {
    const { base, quote } = sides(bot.symbol);
    const el = h(
      "li",
      { class: "card bot", dataset: { botId: bot.id, exchange: bot.exchange }, "aria-labelledby": `bot-${bot.id}` },
      h(
        "div",
        { class: "card-head" },
        badge(bot.exchange, exchanges),
        h("h3", { id: `bot-${bot.id}` }, bot.symbol, h("span", { class: "market-id" }, ` · ${bot.market_id}`)),
        h("span", { class: "strategy" }, bot.strategy),
      ),
      h("p", { class: "bot-status", dataset: { role: "status" } }),
      h("p", { class: "bot-params", dataset: { role: "params" } }, paramSummary(bot.params, quote)),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Position"),
        h("dd", { dataset: { role: "position" } }),
        h("dt", {}, "Realised PnL"),
        h("dd", { dataset: { role: "pnl" } }),
        h("dt", {}, "Unrealised PnL"),
        h("dd", { dataset: { role: "unrealized" } }),
      ),
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", dataset: { role: "toggle" } }),
        h("button", { type: "button", dataset: { role: "edit" }, "aria-label": `Edit the ${bot.symbol} bot on ${exchangeName(bot.exchange, exchanges)}` }, "Edit"),
        h("button", { type: "button", class: "danger", dataset: { role: "delete" }, "aria-label": `Delete the ${bot.symbol} bot on ${exchangeName(bot.exchange, exchanges)}` }, "Delete"),
      ),
      h("h4", {}, "Recent fills"),
      h("ol", { class: "fills", dataset: { role: "fills" } }, h("li", { class: "empty" }, "None yet")),
    );
    const entry = { el, bot, seen: new Set(), base, quote };
    cards.set(bot.id, entry);
    el.querySelector("[data-role=toggle]").addEventListener("click", () => toggle(entry));
    el.querySelector("[data-role=edit]").addEventListener("click", () => editor.open(entry.bot).catch((e) => showAlert(e.message)));
    el.querySelector("[data-role=delete]").addEventListener("click", () => remove(entry));
    setStatus(entry, bot.status, bot.status_reason);
    showFigures(entry, row ?? {});
    return el;
  }

  function setStatus(entry, status, reason) {
    entry.bot.status = status;
    const text = { running: "Running", paused: "Paused", stopped: "Stopped" }[status] || status;
    clear(
      entry.el.querySelector("[data-role=status]"),
      h("span", { class: `status status-${status}` }, text),
      status === "paused" && reason ? h("span", { class: "reason" }, ` — ${reason}`) : null,
    );
    entry.el.dataset.status = status;
    const button = entry.el.querySelector("[data-role=toggle]");
    button.textContent = status === "running" ? "Stop" : "Start";
    button.setAttribute("aria-label", `${button.textContent} the ${entry.bot.symbol} bot on ${exchangeName(entry.bot.exchange, exchanges)}`);
  }

  async function toggle(entry) {
    const { bot: current } = entry;
    let path = `/bots/${current.id}/start`;
    if (current.status === "running") {
      // Stopping asks what happens to the bot's open orders: canceled (the default) or left on the exchange, where a
      // start picks them up again.
      const where = exchangeName(current.exchange, exchanges);
      const answer = await confirmStop.ask(
        `The ${current.symbol} ${current.strategy} bot on ${where} stops acting. Start it again at any time.`,
        undefined,
        { label: `Cancel its open orders on ${where}`, checked: true },
      );
      if (!answer) return;
      path = `/bots/${current.id}/stop${query({ cancel_orders: answer.option })}`;
    }
    try {
      const bot = await post(path);
      setStatus(entry, bot.status, bot.status_reason);
      announce(`${bot.symbol} bot ${bot.status}.`);
    } catch (error) {
      showAlert(error.message);
    }
  }

  function saved(bot) {
    const entry = cards.get(bot.id);
    if (!entry || entry.bot.symbol !== bot.symbol) {
      botsChanged(); // another market: another card, maybe in another place
    } else {
      updateCard(entry, bot);
    }
    announce(`${bot.symbol} bot saved.`);
  }

  async function remove(entry) {
    const { bot } = entry;
    const where = exchangeName(bot.exchange, exchanges);
    // The runner cancels a running bot's open orders when it is deleted (BORSA_RUNNER_CANCEL_ON_STOP, on by default);
    // a bot that is not running has no runner to cancel anything.
    const orders =
      bot.status === "running"
        ? "It stops and its open orders are canceled."
        : `It is not running: orders it left open on ${where}, if any, stay there.`;
    const question = `Delete the ${bot.symbol} ${bot.strategy} bot on ${where}? ${orders} Its fills stay in the reports.`;
    if (!(await confirmDelete.ask(question))) return;
    try {
      await del(`/bots/${bot.id}`);
    } catch (error) {
      if (error.status !== 404) return showAlert(error.message); // 404: already gone, as asked
    }
    cards.delete(bot.id);
    entry.el.remove();
    announce(`${bot.symbol} bot on ${where} deleted.`);
    await load().catch((e) => showAlert(e.message)); // the group's count, the filter, or "No bots yet"
    main.querySelector("h1")?.focus(); // the card that had the focus is gone
  }

  function addFill(botId, fill, fresh = true) {
    const entry = cards.get(botId);
    if (!entry || entry.seen.has(fill.trade_id)) return;
    entry.seen.add(fill.trade_id);
    const list = entry.el.querySelector("[data-role=fills]");
    list.querySelector(".empty")?.remove();
    const ms = fill.timestamp ?? fill.timestamp_ms;
    list.prepend(
      h(
        "li",
        { class: `fill side-${fill.side}${fresh ? " fresh" : ""}`, dataset: { tradeId: fill.trade_id } },
        h("span", { class: "side" }, fill.side),
        ` ${dec(fill.amount, entry.base)} at ${dec(fill.price, entry.quote)}`,
        h("time", { datetime: new Date(ms).toISOString() }, ` · ${time(ms)}`),
      ),
    );
    while (list.children.length > FILLS_SHOWN) list.lastElementChild.remove();
    if (fresh) announce(`${entry.bot.symbol} on ${exchangeName(entry.bot.exchange, exchanges)}: ${fill.side} ${dec(fill.amount, entry.base)} at ${dec(fill.price, entry.quote)}`);
  }

  // The user's bots changed somewhere (this page, another tab, the API): cards come and go as the list says; the
  // others are updated in place, so a change made here does not rebuild the page under the keyboard focus.
  async function syncBots() {
    const bots = await get("/bots");
    const same = bots.length === cards.size && bots.every((b) => cards.get(b.id)?.bot.symbol === b.symbol);
    if (!same) return load();
    for (const bot of bots) updateCard(cards.get(bot.id), bot);
  }

  // A bot as the API now has it (same market): its status and params on its card.
  function updateCard(entry, bot) {
    entry.bot = bot;
    setStatus(entry, bot.status, bot.status_reason);
    figure(entry, "params").textContent = paramSummary(bot.params, entry.quote);
  }
  const botsChanged = soon(() => syncBots().catch((e) => showAlert(e.message)), 300);

  function onEvent(name, data) {
    if (name === "bots") return botsChanged();
    if (name === "bot") {
      const entry = cards.get(data.bot_id);
      if (!entry) return botsChanged();
      setStatus(entry, data.status, data.status_reason);
      if (data.position !== undefined) figure(entry, "position").textContent = dec(data.position ?? "0", entry.base);
      if (data.realized_pnl !== undefined) showMoney(figure(entry, "pnl"), data.realized_pnl ?? "0", entry.quote);
    } else if (name === "order" && data.bot_id) {
      if (!cards.has(data.bot_id)) return botsChanged();
      for (const fill of data.fills || []) addFill(data.bot_id, { ...fill, side: data.order.side });
      if (data.fills?.length) refreshFiguresSoon();
    }
  }

  function figure(entry, role) {
    return entry.el.querySelector(`[data-role=${role}]`);
  }

  // PnL rounded for reading, its exact value in the title.
  function showFigures(entry, row) {
    figure(entry, "position").textContent = dec(row.position ?? "0", entry.base);
    showMoney(figure(entry, "pnl"), row.realized_pnl ?? "0", entry.quote);
    showMoney(figure(entry, "unrealized"), row.unrealized_pnl ?? "0", entry.quote);
  }

  async function refreshFigures() {
    const summary = await get(`/reports/summary${query({ group_by: "bot" })}`);
    for (const row of summary.rows) {
      const entry = row.bot_id && cards.get(row.bot_id);
      if (entry) showFigures(entry, row);
    }
  }

  const refreshFiguresSoon = soon(() => refreshFigures().catch(() => {}), FIGURES_AFTER_FILL_MS); // next round retries

  function applyFilter() {
    for (const section of groups.querySelectorAll(".exchange-group")) section.hidden = !!filter.value && section.dataset.exchange !== filter.value;
  }

  filter.addEventListener("change", () => {
    applyFilter();
    history.replaceState(null, "", `/dashboard${query({ exchange: filter.value })}`);
  });

  await load();
  const stream = connectEvents({
    onEvent,
    onState: (state) => {
      live.dataset.state = state;
      live.textContent = STATE_TEXT[state];
    },
  });
  const figures = setInterval(() => document.hidden || refreshFigures().catch(() => {}), FIGURES_EVERY_MS);
  return () => {
    stream.close();
    clearInterval(figures);
    refreshFiguresSoon.cancel();
    botsChanged.cancel();
  };
}
