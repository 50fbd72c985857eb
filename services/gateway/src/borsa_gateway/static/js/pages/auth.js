// Registration and sign-in: one form, the token kept in sessionStorage (gone when the tab closes).
import { post, session } from "../api.js";
import { clearErrors, field, h, pageHeading, showError } from "../dom.js";

function page(main, navigate, { title, action, submit, other }) {
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const password = h("input", {
    type: "password",
    name: "password",
    minlength: "8",
    autocomplete: action === "register" ? "new-password" : "current-password",
    required: true,
  });
  const form = h(
    "form",
    { class: "card narrow", novalidate: true },
    field({ label: "Email", control: email, field: "email", id: "auth-email" }),
    field({
      label: "Password",
      control: password,
      field: "password",
      id: "auth-password",
      hint: action === "register" ? "At least 8 characters." : null,
    }),
    h("button", { type: "submit", class: "primary" }, submit),
    h("p", {}, other),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const { access_token } = await post(`/auth/${action}`, { email: email.value.trim(), password: password.value });
      session.token = access_token;
      await navigate("/dashboard");
    } catch (error) {
      showError(form, error);
    } finally {
      button.disabled = false;
    }
  });
  main.append(pageHeading(title), form);
  email.focus();
}

export function login(main, { navigate }) {
  page(main, navigate, {
    title: "Sign in",
    action: "login",
    submit: "Sign in",
    other: ["New to Borsa? ", h("a", { href: "/register", "data-link": true }, "Create an account")],
  });
}

export function register(main, { navigate }) {
  page(main, navigate, {
    title: "Create an account",
    action: "register",
    submit: "Create account",
    other: ["Already have an account? ", h("a", { href: "/login", "data-link": true }, "Sign in")],
  });
}
