// The dashboard's "Edit bot" dialog: what PATCH /bots/{id} takes (the market and the strategy's parameters), with the
// API's checks shown next to the field they concern, as on the new-bot form.
import { patch } from "./api.js";
import { clearErrors, exchangeName, field, h, showError, uid } from "./dom.js";
import { formAlert } from "./dialog.js";
import { missingParam, paramFields, paramValues, typedValues } from "./params.js";
import { Picker } from "./picker.js";
import { markets as loadMarkets, strategies as loadStrategies } from "./store.js";

export function editDialog({ exchanges, onSaved }) {
  const id = uid("edit");
  const heading = h("h2", { id: `${id}-title` }, "Edit bot");
  const about = h("p", { class: "hint", id: `${id}-about` });
  const picker = new Picker({ id: `${id}-symbol`, onChange: () => render(typedValues(params)) });
  const pickerField = field({
    label: "Market",
    control: picker.input,
    field: "symbol",
    id: picker.id,
    hint: "Search by symbol or the exchange's own id; ↓ ↑ to move, Enter to choose.",
  });
  pickerField.replaceChild(picker.el, picker.input);
  picker.el.prepend(picker.input);
  const params = h("fieldset", { class: "params" });
  const alert = formAlert();
  const save = h("button", { type: "submit", class: "primary" }, "Save");
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h("form", { novalidate: true, "aria-labelledby": heading.id }, heading, about, pickerField, params, alert, h("div", { class: "actions" }, cancel, save));
  const el = h("dialog", { class: "sheet", id, "aria-labelledby": heading.id, "aria-describedby": about.id }, form);

  let bot = null;
  let strategy = null;
  let opened = 0; // a market list that arrives after the dialog moved on to another bot is dropped

  // Built again when the market changes (its quote currency and rules are in the labels): the focus stays put.
  function render(values) {
    const focused = params.contains(document.activeElement) ? document.activeElement.name : null;
    paramFields(params, strategy, picker.value, { idPrefix: "edit-param", values });
    if (focused) params.querySelector(`input[name="${CSS.escape(focused)}"]`)?.focus();
  }

  async function open(which) {
    const mine = ++opened;
    bot = which;
    strategy = (await loadStrategies()).find((s) => s.name === bot.strategy);
    if (!strategy) throw new Error(`The strategy ${bot.strategy} is no longer offered; this bot cannot be edited here.`);
    const where = exchangeName(bot.exchange, exchanges);
    heading.textContent = `Edit the ${bot.symbol} bot on ${where}`;
    about.textContent =
      `${strategy.name}: ${strategy.description} ` +
      (bot.status === "running" ? "A running bot restarts with the new settings; its open orders stay." : "");
    clearErrors(form);
    picker.setMarkets([]);
    picker.input.value = bot.symbol;
    picker.input.disabled = true;
    render(bot.params);
    el.showModal();
    params.querySelector("input")?.focus();
    try {
      const markets = await loadMarkets(bot.exchange);
      if (mine !== opened) return;
      const values = typedValues(params);
      picker.setMarkets(markets);
      const current = markets.find((m) => m.symbol === bot.symbol);
      if (current) picker.select(current, false);
      else picker.input.value = bot.symbol;
      render(values);
    } catch {
      // Without the market list the symbol stays as typed text; the API still checks it.
    } finally {
      if (mine === opened) picker.input.disabled = false;
    }
  }

  cancel.addEventListener("click", () => el.close());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const symbol = picker.value?.symbol || picker.input.value.trim();
    if (!symbol) return showError(form, { field: "symbol", message: "Choose a market." });
    const values = paramValues(params, strategy);
    const missing = missingParam(strategy, values);
    if (missing) return showError(form, missing);
    const body = { params: values };
    if (symbol !== bot.symbol) body.symbol = symbol;
    save.disabled = true;
    try {
      const saved = await patch(`/bots/${bot.id}`, body);
      el.close();
      onSaved(saved);
    } catch (error) {
      showError(form, error);
    } finally {
      save.disabled = false;
    }
  });

  return { el, open };
}
