// The router: one page per path, rendered into <main>; links move with history.pushState, never a reload.
import { session, whenUnauthorized } from "./api.js";
import { hideAlert, showAlert } from "./dom.js";

const PAGES = {
  "/login": () => import("./pages/auth.js").then((m) => m.login),
  "/register": () => import("./pages/auth.js").then((m) => m.register),
  "/keys": () => import("./pages/keys.js").then((m) => m.render),
  "/bots/new": () => import("./pages/bot_form.js").then((m) => m.render),
  "/dashboard": () => import("./pages/dashboard.js").then((m) => m.render),
  "/reports": () => import("./pages/reports.js").then((m) => m.render),
};
const PUBLIC = new Set(["/login", "/register"]);

let leave = null; // the current page's clean-up (closes its live stream)
let generation = 0; // a newer navigation wins over a page still loading

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  return route();
}

async function route() {
  const mine = ++generation;
  let path = location.pathname.replace(/\/+$/, "") || "/";
  if (path === "/" || !PAGES[path]) path = session.token ? "/dashboard" : "/login";
  if (!PUBLIC.has(path) && !session.token) path = "/login";
  if (path !== location.pathname) history.replaceState(null, "", path);
  if (leave) {
    leave();
    leave = null;
  }
  hideAlert();
  document.getElementById("nav").hidden = !session.token;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === path) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const main = document.getElementById("main");
  const root = document.createElement("div");
  root.className = "page";
  main.replaceChildren(root);
  main.setAttribute("aria-busy", "true");
  let cleanup = null;
  try {
    const render = await PAGES[path]();
    cleanup = (await render(root, { navigate })) || null;
  } catch (error) {
    if (mine === generation) showAlert(error.message || String(error));
  }
  if (mine !== generation) {
    cleanup?.(); // another page was asked for meanwhile: this one is already gone
    return;
  }
  leave = cleanup;
  main.removeAttribute("aria-busy");
  const heading = root.querySelector("h1");
  if (heading) {
    document.title = `${heading.textContent} · Borsa`;
    heading.focus({ preventScroll: true });
  }
  document.body.dataset.page = path;
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});

window.addEventListener("popstate", route);

document.getElementById("sign-out").addEventListener("click", () => {
  session.token = null;
  navigate("/login");
});

whenUnauthorized(() => {
  navigate("/login", { replace: true }).then(() => showAlert("Your session has ended; sign in again."));
});

route();
