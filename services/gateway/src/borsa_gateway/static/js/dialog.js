// Modal <dialog>s: a confirmation that resolves true only for its confirm button, and the shell of a form dialog.
import { h, uid } from "./dom.js";

export function confirmDialog({ title, confirm = "Delete" }) {
  const id = uid("confirm");
  const heading = h("h2", { id: `${id}-title` }, title);
  const message = h("p", { id: `${id}-message` });
  const el = h(
    "dialog",
    { class: "confirm", id, "aria-labelledby": heading.id, "aria-describedby": message.id },
    h(
      "form",
      { method: "dialog" },
      heading,
      message,
      h("div", { class: "actions" }, h("button", { value: "cancel", autofocus: true }, "Cancel"), h("button", { value: "confirm", class: "danger" }, confirm)),
    ),
  );
  return {
    el,
    ask(text, titleText = title) {
      heading.textContent = titleText;
      message.textContent = text;
      el.returnValue = "";
      el.showModal();
      return new Promise((resolve) => el.addEventListener("close", () => resolve(el.returnValue === "confirm"), { once: true }));
    },
  };
}

// The page's alert region sits behind a modal dialog: a form inside one carries its own, which showError uses.
export function formAlert() {
  return h("p", { class: "alert alert-error form-alert", role: "alert", hidden: true });
}
