// The console's shell: sign-in, navigation, and the router from the URL's hash to a page.
import { resume, session, signIn, signOut, whenSignedOut } from "./api.js";
import { field, h, heading, mount, problem } from "./dom.js";
import { caSetsPage, newCaSetPage } from "./casets.js";
import { caSetPage } from "./caset.js";
import { editorPage } from "./editor.js";
import { versionPage } from "./version.js";
import { diffPage } from "./diff.js";
import { activationsPage, activitiesPage, associationsPage } from "./history.js";
import { crlsPage } from "./crls.js";
import { blocksPage } from "./blocks.js";
import { expiringPage } from "./expiring.js";
import { fleetPage } from "./fleet.js";
import { edgePages } from "./edge.js";

const main = document.getElementById("main");

const ROUTES = [
  [/^\/$/, () => caSetsPage],
  [/^\/ca-sets\/new$/, () => newCaSetPage],
  [/^\/ca-sets\/(\d+)$/, (m) => (el) => caSetPage(el, Number(m[1]))],
  [/^\/ca-sets\/(\d+)\/versions\/new$/, (m) => (el) => editorPage(el, Number(m[1]), null)],
  [/^\/ca-sets\/(\d+)\/versions\/(\d+)\/edit$/, (m) => (el) => editorPage(el, Number(m[1]), Number(m[2]))],
  [/^\/ca-sets\/(\d+)\/versions\/(\d+)$/, (m) => (el) => versionPage(el, Number(m[1]), Number(m[2]))],
  [/^\/ca-sets\/(\d+)\/versions\/(\d+)\/diff$/, (m) => (el) => diffPage(el, Number(m[1]), Number(m[2]), fromQuery())],
  [/^\/ca-sets\/(\d+)\/activations$/, (m) => (el) => activationsPage(el, Number(m[1]))],
  [/^\/ca-sets\/(\d+)\/activities$/, (m) => (el) => activitiesPage(el, Number(m[1]))],
  [/^\/ca-sets\/(\d+)\/associations$/, (m) => (el) => associationsPage(el, Number(m[1]))],
  [/^\/ca-sets\/(\d+)\/crls$/, (m) => (el) => crlsPage(el, Number(m[1]))],
  [/^\/ca-sets\/(\d+)\/blocked-certificates$/, (m) => (el) => blocksPage(el, Number(m[1]))],
  [/^\/expiring$/, () => expiringPage],
  [/^\/fleet$/, () => fleetPage],
  ...edgePages(),
];

function path() {
  return (location.hash.replace(/^#/, "") || "/").split("?")[0];
}

// The diff page's `from` version, when the route's query names one.
function fromQuery() {
  const from = new URLSearchParams(location.hash.split("?")[1] || "").get("from");
  return from && /^\d+$/.test(from) ? Number(from) : null;
}

let generation = 0;

// Each page is drawn aside and shown only if no later navigation started meanwhile.
async function render() {
  if (!session.role) return signInPage();
  showChrome(true);
  const current = path();
  const mine = ++generation;
  for (const [pattern, page] of ROUTES) {
    const match = current.match(pattern);
    if (!match) continue;
    main.setAttribute("aria-busy", "true");
    const view = h("div", { class: "view" });
    try {
      await page(match)(view);
    } catch (error) {
      mount(view, heading("Something went wrong"), problem(error));
    }
    if (mine !== generation || !session.role) return;
    mount(main, view);
    main.removeAttribute("aria-busy");
    for (const link of document.querySelectorAll("#nav a")) {
      const target = link.getAttribute("href").slice(1);
      const here = target === "/" ? current === "/" || current.startsWith("/ca-sets") : current.startsWith(target);
      if (here) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
    }
    const title = main.querySelector("h1");
    document.title = `${title ? title.textContent : "Console"} · edgeproxy`;
    if (title) title.focus({ preventScroll: true });
    return;
  }
  mount(main, heading("Not found"), h("p", {}, "No page here. ", h("a", { href: "#/" }, "Go to the CA certificate sets")));
}

function showChrome(on) {
  document.getElementById("nav").hidden = !on;
  document.getElementById("who").hidden = !on;
  document.getElementById("who-name").textContent = on ? `${session.name} (${session.role})` : "";
}

function signInPage(error) {
  generation += 1;
  main.removeAttribute("aria-busy");
  showChrome(false);
  document.title = "Sign in · edgeproxy";
  const token = h("input", { type: "password", name: "token", autocomplete: "current-password", required: true });
  const status = h("div", { "aria-live": "polite" }, error ? problem(error) : null);
  const form = h("form", { class: "card narrow", novalidate: true },
    field("Token", token, "An admin API token; the console keeps a session, not the token."),
    status,
    h("button", { type: "submit", class: "primary" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!token.value) {
      mount(status, h("p", { class: "error", role: "alert" }, "Enter a token."));
      token.focus();
      return;
    }
    try {
      await signIn(token.value);
      token.value = "";
      await render();
    } catch (failure) {
      mount(status, problem(failure, "Signing in failed."));
      token.focus();
    }
  });
  mount(main, heading("Sign in to the edgeproxy console"), form);
  token.focus();
}

whenSignedOut((error) => signInPage(error));

document.getElementById("sign-out").addEventListener("click", async () => {
  try { await signOut(); } catch { /* the session is gone either way */ }
  location.hash = "#/";
  signInPage();
});

// The skip link moves focus; following its href would change the route.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

window.addEventListener("hashchange", render);

(async () => {
  try { await resume(); } catch (error) { return signInPage(error); }
  await render();
})();
