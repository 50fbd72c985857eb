// Modal <dialog>s: a confirmation that resolves true only for its confirm button (with an optional checkbox), and the
// shell of a form dialog.
import { h, uid } from "./dom.js";

// `option`: a checkbox under the message (its label and default set per question); `ask` then resolves to null when
// cancelled and to {option: checked} when confirmed.
export function confirmDialog({ title, confirm = "Delete", cancel = "Cancel", danger = true, option = false }) {
  const id = uid("confirm");
  const heading = h("h2", { id: `${id}-title` }, title);
  const message = h("p", { id: `${id}-message` });
  const box = option ? h("input", { type: "checkbox", id: `${id}-option` }) : null;
  const boxLabel = option ? h("label", { for: `${id}-option` }) : null;
  const confirmButton = h("button", { value: "confirm", class: danger ? "danger" : null }, confirm);
  const el = h(
    "dialog",
    { class: "confirm", id, "aria-labelledby": heading.id, "aria-describedby": message.id },
    h(
      "form",
      { method: "dialog" },
      heading,
      message,
      option ? h("div", { class: "checkbox" }, box, boxLabel) : null,
      h("div", { class: "actions" }, h("button", { value: "cancel", autofocus: true }, cancel), confirmButton),
    ),
  );
  return {
    el,
    ask(text, titleText = title, { label = "", checked = false } = {}) {
      heading.textContent = titleText;
      message.textContent = text;
      if (box) {
        boxLabel.textContent = label;
        box.checked = checked;
      }
      el.returnValue = "";
      el.showModal();
      return new Promise((resolve) =>
        el.addEventListener(
          "close",
          () => {
            const confirmed = el.returnValue === "confirm";
            resolve(box ? (confirmed ? { option: box.checked } : null) : confirmed);
          },
          { once: true },
        ),
      );
    },
  };
}

// The page's alert region sits behind a modal dialog: a form inside one carries its own, which showError uses.
export function formAlert() {
  return h("p", { class: "alert alert-error form-alert", role: "alert", hidden: true });
}
